"""The same store against a Chroma server (`chroma run` on loopback) instead of embedded."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.knowledge.rag import Store
from tests.conftest import FakeEmbedder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    chroma = Path(sys.executable).with_name("chroma")
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(chroma),
            "run",
            "--path",
            str(tmp_path / "server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chroma run did not start listening within 30 s")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


def test_documents_go_to_the_server_and_come_back_from_it(chroma_server, tmp_path):
    doc = tmp_path / "volcano.txt"
    doc.write_text("Rhyolite magma is viscous and erupts explosively.\n\nBasalt flows.")
    embed = FakeEmbedder().embed
    store = Store(tmp_path / "documents", "fake", chroma_url=chroma_server)
    from assistant.knowledge.documents import read

    _, added = store.add(doc, doc.name, read(doc), "user-local", embed)
    assert added >= 1
    sql, remote = store.chunk_ids("user-local")
    assert sql == remote
    question = "why does rhyolite erupt explosively"
    hits = store.search(question, embed([question])[0], ["user-local", "shared"])
    assert hits[0].name == "volcano.txt" and "Rhyolite" in hits[0].text
    assert not (tmp_path / "documents" / "chroma").exists()  # nothing embedded locally


def test_an_unreachable_server_is_a_clear_message(tmp_path):
    from models.base import ModelUnavailable

    store = Store(tmp_path / "documents", "fake", chroma_url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(ModelUnavailable, match="cannot be reached"):
        store.chunk_ids("user-local")
