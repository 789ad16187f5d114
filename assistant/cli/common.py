"""What every command shares: progress on stderr, attachments checked before any work."""

from __future__ import annotations

import sys
from pathlib import Path

from models.base import BadInput


def progress(message: str) -> None:
    # Progress goes to stderr so that --json output on stdout stays parseable.
    print(message, file=sys.stderr, flush=True)


def existing_files(names: list[str]) -> list[Path]:
    """The attachments as paths, refused up front when one is not a file."""
    for name in names:
        if not Path(name).is_file():
            raise BadInput(f"Attachment not found: {name}. Give the path of an existing file.")
    return [Path(name) for name in names]
