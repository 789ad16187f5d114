"""`python -m assistant ...`: the command line lives in assistant/cli/ (a module per group)."""

import sys

from assistant.cli import main

if __name__ == "__main__":
    sys.exit(main())
