"""Every reader of file suffixes agrees with the one table (assistant/routing/kinds.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.catalog.backends import build_adapter
from assistant.catalog.entries import Catalog
from assistant.knowledge.documents import check_file
from assistant.routing import kinds
from assistant.routing.router import Router
from models.base import Adapter, BadInput, Request, Result, Usage
from tests.conftest import FakeChat, make_assistant

# What the chat does with one attached file of each kind (asked "what is this?").
TASK_OF_KIND = {"audio": "asr", "video": "asr", "image": "vision", "document": "rag"}


class FakeEars(Adapter):
    """Speech recognition that hears one timed sentence in whatever it is given."""

    family, tasks = "asr", ("asr",)

    def load(self) -> None:
        pass

    def stream(self, request, cancel=None):
        segment = {"start": 0.0, "end": 2.0, "text": "the meeting moved to Tuesday"}
        yield Result(text=segment["text"], segments=(segment,), usage=Usage(2, 5, "audio_seconds"))


class FakeEyes(Adapter):
    """A picture reader that sees the same thing in every picture."""

    family, tasks = "vision", ("vision",)

    def load(self) -> None:
        pass

    def stream(self, request, cancel=None):
        yield Result(text="a receipt for 12.50", usage=Usage(1, 4, "images"))


def test_the_table_gives_each_suffix_one_kind_and_unknown_files_are_other():
    assert set(kinds.KINDS.values()) == set(TASK_OF_KIND)
    assert kinds.kind_of("Talk.MP4") == "video" and kinds.kind_of("notes.markdown") == "document"
    assert kinds.kind_of("setup.exe") == "other" and kinds.kind_of("README") == "other"
    assert kinds.HEARD == kinds.AUDIO | {".mp4"}


@pytest.mark.parametrize("suffix", sorted(kinds.KINDS))
def test_the_chat_routes_every_suffix_by_its_kind(suffix):
    router = Router(Catalog.load())
    decision = router.route(Request(text="what is this?", attachments=(Path("a" + suffix),)))
    assert decision.task == TASK_OF_KIND[kinds.KINDS[suffix]]


def test_the_chat_refusal_lists_every_suffix_of_the_table():
    with pytest.raises(BadInput) as refused:
        Router(Catalog.load()).route(Request(text="run it", attachments=(Path("setup.exe"),)))
    assert all(suffix in str(refused.value) for suffix in kinds.KINDS)


@pytest.mark.parametrize("suffix", sorted(kinds.KINDS))
def test_ingest_takes_every_suffix_and_hears_or_reads_it_by_kind(settings, tmp_path, suffix):
    ears, eyes = FakeEars(), FakeEyes()
    assistant = make_assistant(settings, FakeChat(), {"asr": ears, "vision": eyes})
    path = tmp_path / f"file{suffix}"
    path.write_text("the meeting moved to Tuesday\n")
    outcome = assistant.ingest(path)
    kind = kinds.KINDS[suffix]
    if kind in ("audio", "video", "image") or suffix not in (".pdf", ".docx"):
        assert outcome.status == "ok", outcome.error
    else:  # not a real PDF or .docx: refused by its parser, never as an unknown type
        assert "unsupported type" not in (outcome.error or "")
    first = [s.route.task for s in outcome.steps][0] if outcome.steps else outcome.route.task
    assert first == {"audio": "asr", "video": "asr", "image": "vision"}.get(kind, "rag")


def test_documents_refuse_what_the_table_does_not_call_a_document(tmp_path):
    for suffix, kind in {**kinds.KINDS, ".exe": "other"}.items():
        path = tmp_path / f"f{suffix}"
        path.write_text("x")
        if kind == "document":
            check_file(path, 1 << 20)
        else:
            with pytest.raises(BadInput, match="unsupported type"):
                check_file(path, 1 << 20)


def test_the_adapters_the_catalog_builds_take_the_tables_suffixes(settings):
    catalog = Catalog.load()
    ears = build_adapter(catalog.get("whisper-base"), settings)
    assert ears.recordings == kinds.HEARD
    with pytest.raises(BadInput, match=r"\.mp4"):  # what it asks for names the table's kinds
        list(ears.stream(Request(attachments=(Path("notes.pdf"),))))
    painter = next(e for e in catalog.entries.values() if e.backend == "diffusers" and e.built)
    assert build_adapter(painter, settings).pictures == kinds.IMAGE
