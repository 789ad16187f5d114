"""Reading a user's file into chunks with a place each: page, section, line or time.

Checks come first, before any parser sees the bytes: size cap (unread), an
empty file, an unsupported type, a PDF that is not one, a .docx whose zip
would inflate past sense. Parsers are the libraries LangChain's own loaders
wrap (pypdf, docx2txt, BeautifulSoup); splitting is LangChain's text
splitters. Audio arrives here already transcribed (timed segments from the
speech family), so this module needs no model.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from assistant.routing import kinds
from models.base import BadInput

# Part of every chunk id: a change to how text is split makes new ids, so
# a re-ingest after an upgrade never mixes chunks of two splitters.
SPLITTER_VERSION = "recursive-700-100/v1"
CHUNK_CHARS = 700  # ~180 MiniLM word pieces: under its 256-piece window
CHUNK_OVERLAP = 100
SEGMENT_CHARS = 500  # audio: consecutive transcript segments joined up to this

READABLE = kinds.DOCUMENT  # the one table's documents; read() picks the parser below
HTML_TYPES = {".html", ".htm"}
# A .docx is a zip: its parts may not inflate past this, nor by more than
# this ratio (real documents compress ~3-10x; bombs by thousands).
DOCX_MAX_INFLATED = 200 << 20
DOCX_MAX_RATIO = 200


@dataclass(frozen=True)
class Chunk:
    id: str  # sha256(document hash, position, splitter version): the same file makes the same ids
    doc_id: str
    position: int
    text: str
    location: str  # what a person reads: "page 3", "§ Install", "line 42", "01:05–01:20"
    start_s: float | None = None  # recordings: where to play from


@dataclass(frozen=True)
class Parsed:
    """A file's text as pieces, each with the place it came from."""

    kind: str  # "text" | "markdown" | "html" | "pdf" | "docx" | "audio"
    pieces: tuple[tuple[str, str, float | None], ...] = field(default=())  # (text, where, start)


def safe_name(name: str) -> str:
    """A file name fit to show and to store: no folders, no control or shell characters."""
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = re.sub(r"[^\w.\- ()\[\]]", "_", base).strip(" .")
    return base[:120] or "document"


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_file(path: Path, max_bytes: int, also: set[str] = frozenset()) -> None:
    """Refuse what must never reach a parser; ``also`` adds types handled elsewhere (audio)."""
    if not path.is_file():
        raise BadInput(f"{safe_name(path.name)}: no such file.")
    size = path.stat().st_size
    if size == 0:
        raise BadInput(f"{safe_name(path.name)} is empty: nothing to index.")
    if size > max_bytes:
        raise BadInput(
            f"{safe_name(path.name)} is {size / 2**20:,.0f} MB; the limit is "
            f"{max_bytes / 2**20:,.0f} MB (ASSISTANT_MAX_UPLOAD_MB). Split it, or raise the limit."
        )
    suffix = path.suffix.lower()
    if suffix not in READABLE | also:
        kinds = ", ".join(sorted(READABLE | also))
        raise BadInput(
            f"{safe_name(path.name)}: unsupported type '{suffix or 'none'}'. "
            f"Documents can be {kinds}."
        )


def read(path: Path) -> Parsed:
    """Text with locations, or BadInput saying why the file cannot be read."""
    suffix = path.suffix.lower()
    name = safe_name(path.name)
    if suffix == ".pdf":
        parsed = _pdf(path, name)
    elif suffix == ".docx":
        parsed = _docx(path, name)
    elif suffix in HTML_TYPES:
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(_decode(path), "html.parser")
        for tag in soup(["script", "style", "noscript"]):
            tag.decompose()  # code and styling are not the document's words
        parsed = Parsed("html", _by_lines(soup.get_text("\n")))
    elif suffix in (".md", ".markdown"):
        parsed = Parsed("markdown", _markdown(_decode(path)))
    else:
        parsed = Parsed("text", _by_lines(_decode(path)))
    if not any(text.strip() for text, _, _ in parsed.pieces):
        hint = " (a scanned PDF has only pictures of text)" if suffix == ".pdf" else ""
        raise BadInput(f"{name}: no text found in it{hint}.")
    return parsed


def from_segments(segments: list[dict]) -> Parsed:
    """A transcript's timed segments, joined into passages that keep their start and end."""
    pieces, buf, start, end = [], [], None, None
    for seg in segments:
        if start is None:
            start = float(seg["start"])
        buf.append(seg["text"].strip())
        end = float(seg["end"])
        if sum(len(t) for t in buf) >= SEGMENT_CHARS:
            pieces.append((" ".join(buf), f"{_clock(start)}–{_clock(end)}", start))
            buf, start = [], None
    if buf:
        pieces.append((" ".join(buf), f"{_clock(start)}–{_clock(end)}", start))
    return Parsed("audio", tuple(pieces))


def chunk(parsed: Parsed, doc_id: str) -> list[Chunk]:
    """Split each piece with LangChain's recursive splitter; ids are content-derived."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_CHARS, chunk_overlap=CHUNK_OVERLAP, add_start_index=True
    )
    chunks: list[Chunk] = []
    for text, where, start_s in parsed.pieces:
        if parsed.kind == "audio":  # already passage-sized; keep the times exact
            parts = [(text, where)]
        else:
            docs = splitter.create_documents([text])
            parts = [
                (d.page_content, _refine(where, text, d.metadata.get("start_index", 0)))
                for d in docs
            ]
        for part, location in parts:
            if not part.strip():
                continue
            position = len(chunks)
            key = f"{doc_id}\n{position}\n{SPLITTER_VERSION}".encode()
            chunks.append(
                Chunk(
                    hashlib.sha256(key).hexdigest()[:32], doc_id, position, part, location, start_s
                )
            )
    return chunks


# -- readers ------------------------------------------------------------------


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise BadInput(f"{safe_name(path.name)} looks binary, not text; nothing was indexed.")
    # Invalid UTF-8 is kept readable rather than refused: one bad byte in a
    # log file should not lose the rest of it.
    return raw.decode("utf-8", errors="replace")


def _by_lines(text: str) -> tuple[tuple[str, str, None], ...]:
    text = re.sub(r"\n{3,}", "\n\n", text)
    return ((text, "line 1", None),)  # _refine turns the offset into the chunk's line


def _markdown(text: str) -> tuple[tuple[str, str, None], ...]:
    """One piece per section, located by its heading path (§ Install › Linux)."""
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    splitter = MarkdownHeaderTextSplitter(
        [("#", "h1"), ("##", "h2"), ("###", "h3")], strip_headers=False
    )
    pieces = []
    for doc in splitter.split_text(text):
        heads = [doc.metadata[h] for h in ("h1", "h2", "h3") if h in doc.metadata]
        pieces.append((doc.page_content, "§ " + " › ".join(heads) if heads else "top", None))
    return tuple(pieces)


def _pdf(path: Path, name: str) -> Parsed:
    with open(path, "rb") as f:
        if b"%PDF-" not in f.read(1024):
            raise BadInput(f"{name} is not a PDF (no PDF header); nothing was indexed.")
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        pages = [
            (page.extract_text() or "", f"page {i + 1}", None)
            for i, page in enumerate(reader.pages)
        ]
    except (PyPdfError, ValueError, KeyError, TypeError) as err:
        raise BadInput(f"{name} could not be read as a PDF ({err}); nothing was indexed.") from None
    return Parsed("pdf", tuple(pages))


def _docx(path: Path, name: str) -> Parsed:
    if not zipfile.is_zipfile(path):
        raise BadInput(f"{name} is not a .docx (not a zip container); nothing was indexed.")
    with zipfile.ZipFile(path) as z:
        inflated = sum(i.file_size for i in z.infolist())
        packed = max(1, sum(i.compress_size for i in z.infolist()))
        if inflated > DOCX_MAX_INFLATED or inflated / packed > DOCX_MAX_RATIO:
            ratio = inflated / packed
            raise BadInput(
                f"{name} would inflate to {inflated / 2**20:,.0f} MB "
                f"({ratio:,.0f}× its size): refused as a zip bomb."
            )
        if "word/document.xml" not in z.namelist():
            raise BadInput(f"{name} is a zip but not a Word document; nothing was indexed.")
    import docx2txt

    try:
        text = docx2txt.process(str(path))
    except Exception as err:  # docx2txt raises whatever its XML parser raises
        raise BadInput(f"{name} could not be read as a .docx ({err}).") from None
    return Parsed("docx", _by_lines(text))


def _refine(where: str, text: str, offset: int) -> str:
    # A chunk of a long piece is located by the line it starts on.
    if where.startswith("line "):
        return f"line {text.count(chr(10), 0, offset) + 1}"
    return where


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
