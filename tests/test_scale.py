"""Past one machine, on loopback: two replicas behind nginx, sharing their state.

Started as separate processes (bench/stack.py): a Chroma server, the model
endpoint (a second instance of this app serving /v1 with fake models), two
replicas (`python -m assistant serve`, as deployed) and nginx with
deploy/nginx/assistant.conf in front. Where PostgreSQL is installed
(tests/pg.py's throwaway cluster) each replica has an ASSISTANT_HOME of its
own, as on two machines, and they share only the database (ledger, chats,
documents' registry), the Chroma server and the folder of uploads and kept
documents (ASSISTANT_SHARED_DIR). Without PostgreSQL they share one home and
its SQLite files instead, which is the same sharing on one machine only.
Everything a client does goes over HTTP.
"""

from __future__ import annotations

import dataclasses
import io
import sqlite3
import time

import httpx
import pytest

from assistant.settings import Settings
from bench.stack import Stack, nginx_missing
from tests.security.served import file_data, join

pytestmark = [
    pytest.mark.scale,
    pytest.mark.skipif(nginx_missing() is not None, reason=nginx_missing() or ""),
]
ANA = {"Authorization": "Bearer ana:pw-ana"}
BOB = {"Authorization": "Bearer bob:pw-bob"}
REPLICA_TIMEOUT_S = 4
# A started row's replica, a finished row's error: how the kill test reads a request.
COLUMNS = "phase, status, COALESCE(replica, error)"


@pytest.fixture(scope="module")
def database_url(request):
    """A fresh PostgreSQL database for the ledger and chats, where this version reads
    ASSISTANT_DATABASE_URL and PostgreSQL is installed; else None (the shared SQLite)."""
    if "database_url" not in {f.name for f in dataclasses.fields(Settings)}:
        yield None
        return
    from tests import pg

    if pg.missing():
        yield None
        return
    admin = request.getfixturevalue("pg_admin_url")
    url = pg.fresh_database(admin)
    yield url
    pg.drop_database(admin, url)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, database_url):
    folder = tmp_path_factory.mktemp("scale")
    with Stack(folder) as stack:
        stack.database_url = database_url
        chroma, endpoint = stack.chroma(), stack.endpoint()
        env = {
            "ASSISTANT_AUTH": "ana:pw-ana,bob:pw-bob",
            "ASSISTANT_CHROMA_URL": chroma.url,
            # A killed replica is taken for dead after 4 s unheard (60 s by default).
            "ASSISTANT_REPLICA_TIMEOUT_S": str(REPLICA_TIMEOUT_S),
        }
        a, b = stack.replica("a", endpoint, env), stack.replica("b", endpoint, env)
        stack.nginx([a, b])
        stack.wait("chroma", "endpoint", "a", "b", "nginx", timeout_s=180)
        yield stack


def _ask(url: str, text: str, headers=ANA, user: str = "t") -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions", json=_body(text, user), headers=headers, timeout=60
    )


def _events(
    stack: Stack, request_id: str = "", session: str = "", model: str = "", columns: str = ""
) -> list[tuple]:
    """(phase, status, device) of the shared ledger's events of one request, or of every
    request of a session or a model (only a started row names them)."""
    by = "session_id" if session else "model" if model else ""
    ids = f"SELECT request_id FROM events WHERE {by} = ?" if by else "?"
    sql = (
        f"SELECT {columns or 'phase, status, device'} FROM events"
        f" WHERE request_id IN ({ids}) ORDER BY seq"
    )
    arg = session or model or request_id
    if stack.database_url:
        import psycopg

        with psycopg.connect(stack.database_url) as db:
            return [tuple(r) for r in db.execute(sql.replace("?", "%s"), (arg,)).fetchall()]
    with sqlite3.connect(stack.folder / "shared-home" / "ledger.sqlite") as db:
        return db.execute(sql, (arg,)).fetchall()


def _login(url: str, user: str, password: str, cookies=None) -> httpx.Client:
    """A browser logged in at ``url``; ``cookies``: the same browser, come from elsewhere."""
    client = httpx.Client(base_url=url, timeout=60, cookies=cookies)
    client.get("/config")
    assert client.post("/login", data={"username": user, "password": password}).status_code == 200
    client.get("/config")
    return client


def test_requests_land_on_both_replicas_and_each_is_one_finished_row(stack):
    proxy = stack.processes["nginx"].url
    replicas = {stack.processes[n].port for n in ("a", "b")}
    served, ids = set(), []
    for i in range(6):
        reply = _ask(proxy, f"hello number {i}")
        assert reply.status_code == 200, reply.text
        served.add(int(reply.headers["x-served-by"].rsplit(":", 1)[1]))
        ids.append(reply.json()["assistant"]["request_id"])
    assert served == replicas
    where = "remote:" + stack.processes["endpoint"].url[7:]
    for request_id in ids:
        assert _events(stack, request_id) == [
            ("started", None, None),
            ("finished", "ok", where),  # and it says where the work ran: the endpoint
        ]


def test_a_chat_started_on_a_continues_on_b_with_its_history(stack):
    a, b = (stack.processes[n].url for n in ("a", "b"))
    status, output = join(
        _login(a, "ana", "pw-ana"), "chat", {0: {"text": "my name is Ana", "files": []}}
    )
    assert status == 200 and "process_completed" in output, output[-400:]
    # A page opened on B reopens the chat used last, from the shared store.
    on_b, page = _login(b, "ana", "pw-ana"), "page-on-b"
    status, output = join(on_b, "last_chat", {}, session=page)
    assert status == 200 and "my name is Ana" in output, output[-400:]
    status, output = join(
        on_b, "chat", {0: {"text": "what is my name?", "files": []}}, session=page
    )
    # The endpoint heard the exchange made on A (Ana's words and the reply) before it.
    assert "Heard 2 earlier turns; the first was: my name is Ana" in output, output[-400:]


def test_a_document_indexed_on_a_is_cited_on_b_only_for_its_owner(stack):
    a, b = (stack.processes[n].url for n in ("a", "b"))
    ana = _login(a, "ana", "pw-ana")
    text = b"Unicorn care.\n\nThe unicorn code of the stables is 4417. Unicorns eat oats.\n"
    [up] = ana.post(
        "/gradio_api/upload", files={"files": ("unicorns.txt", text, "text/plain")}
    ).json()
    status, output = join(ana, "index_documents", {0: [file_data(up)], 1: False})
    assert status == 200 and "process_completed" in output, output[-400:]
    question = "What is the unicorn code of the stables?"
    owner = _ask(b, question, ANA)
    assert owner.status_code == 200, owner.text
    route = owner.json()["assistant"]["route"]
    assert route["task"] == "rag" and "4417" in owner.json()["choices"][0]["message"]["content"]
    other = _ask(b, question, BOB)
    assert other.status_code == 200 and other.json()["assistant"]["route"]["task"] != "rag"
    assert "4417" not in other.text
    if stack.database_url:  # as two machines: nothing of the document in either one's home
        homes = [stack.folder / f"home-{name}" for name in "ab"]
        assert all(home.is_dir() for home in homes)
        assert not [p for home in homes for p in home.rglob("documents.sqlite*")]
        kept = stack.folder / "shared" / "documents"
        assert [p.name for p in kept.rglob("*.txt")] == ["unicorns.txt"]


def test_a_picture_uploaded_through_a_is_read_through_b_on_the_vision_endpoint(stack):
    a, b = (stack.processes[n].url for n in ("a", "b"))
    on_a = _login(a, "ana", "pw-ana")
    [up] = on_a.post(
        "/gradio_api/upload",
        files={"files": ("red.png", _png((64, 48), (200, 30, 30)), "image/png")},
    ).json()
    # The same browser (its cookie), now on B: as after nginx fails over from A.
    on_b = _login(b, "ana", "pw-ana", cookies=on_a.cookies)
    ask = {0: {"text": "what is in this picture?", "files": [file_data(up)]}}
    status, output = join(on_b, "chat", ask)
    assert status == 200 and "process_completed" in output, output[-400:]
    # B sent the picture as an image_url part to the endpoint's own /v1, which read it.
    assert "sees a 64x48 picture whose corner is RGB(200, 30, 30)" in output, output[-600:]
    where = "remote:" + stack.processes["endpoint"].url[7:]
    assert f"on {where}" in output  # the route card says where the work ran
    assert _events(stack, model="lab-vision") == [
        ("started", None, None),
        ("finished", "ok", where),
    ]
    # Another browser, even of the same user, may not use that upload.
    assert join(_login(b, "ana", "pw-ana"), "chat", ask)[0] == 403


def test_killing_a_replica_mid_stream_fails_that_request_and_the_next_go_to_the_other(stack):
    proxy, a = stack.processes["nginx"].url, stack.processes["a"]
    for attempt in range(4):  # round-robin: one of the next two lands on A
        user = f"killed-{attempt}"
        # Pinned to the chat model: the router is not what is tested here.
        body = {**_body("explain slowly", user), "stream": True, "model": "lab-text"}
        with httpx.stream(
            "POST", f"{proxy}/v1/chat/completions", json=body, headers=ANA, timeout=30
        ) as reply:
            if int(reply.headers["x-served-by"].rsplit(":", 1)[1]) != a.port:
                reply.read()
                continue
            lines = (line for line in reply.iter_lines() if line)  # events, not the blanks
            assert '"role": "assistant"' in next(lines)
            assert "word0" in next(lines)  # mid-answer now
            stack.kill("a")
            started = time.monotonic()
            with pytest.raises(httpx.HTTPError):  # cut off, never a silent normal end
                rest = list(lines)
                raise AssertionError(f"the stream ended normally: {rest[-3:]}")
            assert time.monotonic() - started < 10
        break
    else:
        pytest.fail("no streamed request landed on replica A")
    # The ledger keeps what happened: started on A, which died before it finished ...
    [(phase, status, replica)] = _events(stack, session=f"api-ana/{user}", columns=COLUMNS)[:1]
    assert phase == "started" and replica.startswith("a:")
    # ... and B, no longer hearing A, closes it as failed: a row of its own, not an update.
    deadline = time.monotonic() + REPLICA_TIMEOUT_S * 3
    while len(events := _events(stack, session=f"api-ana/{user}", columns=COLUMNS)) < 2:
        assert time.monotonic() < deadline, "the killed replica's request was never closed"
        time.sleep(0.5)
    assert events[1][:2] == ("finished", "error")
    assert events[1][2].startswith(f"replica stopped: the replica {replica} ")
    for i in range(4):
        after = _ask(proxy, f"are you there {i}?")
        assert after.status_code == 200, after.text
        assert int(after.headers["x-served-by"].rsplit(":", 1)[1]) == stack.processes["b"].port


def test_a_dead_endpoint_is_named_recorded_and_recovered_from(stack):
    proxy = stack.processes["nginx"].url
    stack.kill("endpoint")
    down = _ask(proxy, "hello while it is down", user="down")
    assert down.status_code == 503
    assert down.json()["error"]["message"].startswith("Endpoint unavailable:")
    assert [e[:2] for e in _events(stack, session="api-ana/down")] == [
        ("started", None),
        ("finished", "error"),
    ]
    stack.restart("endpoint")
    stack.wait("endpoint", timeout_s=120)
    back = _ask(proxy, "hello again", user="back")
    assert back.status_code == 200, back.text


def _png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def _body(text: str, user: str) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": text}], "user": user}
