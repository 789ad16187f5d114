"""Entry point for `make run` and Hugging Face Spaces: build the app from settings and serve it."""

import sys

from assistant.settings import Settings
from models.base import AssistantError

if __name__ == "__main__":
    try:
        from assistant.web.server import serve

        serve(Settings.from_env())
    except AssistantError as err:
        # Configuration problems (unwritable ASSISTANT_HOME, a ledger that is
        # not SQLite...) are stated plainly, not as a traceback.
        sys.exit(f"Cannot start: {err}")
