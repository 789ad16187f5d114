"""The one table of file kinds: which suffixes are audio, video, pictures or documents.

The router, ingest, the chat and the adapters built by the catalog all read
this table, so a file the knowledge base takes is never "unsupported" in the
chat, and a recording speech recognition can hear is never refused before it
gets there. Decisions where the old sets disagreed:
- ``.markdown`` and ``.log`` are documents everywhere (ingest always read them).
- ``.mp4`` is a video: its sound track is transcribed, in the chat as in
  ingest (PyAV reads it; speech recognition always took it).
- ``.tif``/``.tiff`` are pictures for editing too, not only for reading
  (Pillow opens them).
"""

from __future__ import annotations

from pathlib import Path

KINDS: dict[str, str] = {
    **dict.fromkeys((".wav", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".flac", ".aac"), "audio"),
    ".mp4": "video",
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"), "image"),
    **dict.fromkeys(
        (".txt", ".md", ".markdown", ".rst", ".log", ".csv", ".json")
        + (".html", ".htm", ".pdf", ".docx"),
        "document",
    ),
}


def suffixes(*kinds: str) -> frozenset[str]:
    """Every suffix of the given kinds, e.g. ``suffixes("audio", "video")``."""
    return frozenset(s for s, k in KINDS.items() if k in kinds)


def kind_of(path: Path | str) -> str:
    """ "audio" | "video" | "image" | "document", or "other" for anything else."""
    return KINDS.get(Path(path).suffix.lower(), "other")


def listed(*kinds: str) -> str:
    """The suffixes of those kinds as a person reads them: ".aac, .flac, ...\"."""
    return ", ".join(sorted(suffixes(*kinds)))


AUDIO = suffixes("audio")
IMAGE = suffixes("image")
DOCUMENT = suffixes("document")
# What speech recognition hears: recordings, and a video's sound track.
HEARD = suffixes("audio", "video")
