"""Entry point for `make run` and Hugging Face Spaces: build the app from settings and serve it."""

import sys

from assistant.settings import Settings
from models.base import AssistantError

if __name__ == "__main__":
    try:
        from assistant.web.space import ensure_packs, on_space
        from assistant.web.ui import serve

        settings = Settings.from_env()
        if on_space():
            # Spaces cannot pip-install the weight packs with --no-deps from
            # requirements.txt; they go into ASSISTANT_HOME once (see assistant/web/space.py).
            settings.ensure_home()
            ensure_packs(settings.home)
        serve(settings)
    except AssistantError as err:
        # Configuration problems (unwritable ASSISTANT_HOME, a ledger that is
        # not SQLite...) are stated plainly, not as a traceback.
        sys.exit(f"Cannot start: {err}")
