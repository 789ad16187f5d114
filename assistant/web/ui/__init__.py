"""The web UI. Build it only through ``build()`` (assistant/web/server.py serves it).

Gradio reads GRADIO_TEMP_DIR when it is first imported and stores every
upload there; pointing it into ASSISTANT_HOME before that import is what
keeps uploads (and everything else) inside the one folder the app owns.
"""

from __future__ import annotations

import os

from assistant.settings import Settings


def build(settings: Settings, progress=print):
    """(gradio Blocks, Assistant) for these settings, uploads kept in ASSISTANT_HOME."""
    settings.ensure_home()
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(settings.uploads_dir.resolve())
    from assistant.flow.service import Assistant
    from assistant.web.ui.app import build_app

    assistant = Assistant.from_settings(settings, progress=progress)
    return build_app(assistant), assistant
