"""#17 critical: no server file leaves through an attachment path.

The attack: a client names a server path as a file in an event's data
(``{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}`` in
queue/join). Before the fix Gradio copied it into the upload cache (the
mounted app never set ``has_launched``, so its check returned early), the
chat echoed the copy's path and ``/gradio_api/file=`` served it. Each case
below sends one target through one event or tool, over HTTP, and then
fetches every path the server handed back: none may carry the target's
bytes, and no copy may appear in the upload folder.
"""

from __future__ import annotations

import pytest

from assistant.settings import Settings
from tests.security.served import call, file_data, join, paths_in_output, serve

SECRET = "TOP-SECRET-7f3a outside ASSISTANT_HOME"
PAYSLIP = "ana's payslip 5e1c"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("fileread")
    secret = root / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    with serve(Settings(home=root / "home")) as served:
        ana = served.browser()
        [payslip] = ana.post(
            "/gradio_api/upload", files={"files": ("payslip.txt", PAYSLIP.encode(), "text/plain")}
        ).json()
        assert ana.get(f"/gradio_api/file={payslip}").text == PAYSLIP  # the owner gets it
        targets = {
            "outside file": (str(secret), SECRET),
            "/etc/passwd": ("/etc/passwd", "root:"),
            "/proc/self/environ": ("/proc/self/environ", "PATH="),
            "ledger": (str(served.settings.ledger_path), "SQLite format 3"),
            "another browser's upload": (payslip, PAYSLIP),
        }
        yield served, targets, payslip


def _chat_box(path):
    return {0: {"text": "what is in this file?", "files": [file_data(path)]}}


def _chat_box_bare(path):
    return {0: {"text": "what is in this file?", "files": [path]}}


def _chat_history(path):
    return {
        0: {"text": "hello", "files": []},
        1: [{"role": "user", "content": [{"type": "file", "file": file_data(path)}]}],
    }


def _rerun(path):
    return {
        0: [
            {"role": "user", "content": [{"type": "file", "file": file_data(path)}]},
            {"role": "user", "content": "again please"},
        ]
    }


def _rerun_bare(path):  # a message dict without Gradio's meta marker
    return {
        0: [
            {"role": "user", "content": {"path": path}},
            {"role": "user", "content": "again please"},
        ]
    }


QUEUED = {  # api name -> how the path is placed among its inputs
    "chat": [_chat_box, _chat_box_bare, _chat_history],
    "rerun": [_rerun, _rerun_bare],
    "index_documents": [lambda p: {0: [file_data(p)], 1: False}],
    "transcribe": [lambda p: {0: file_data(p)}],
    "look_at_picture": [lambda p: {0: file_data(p), 1: "what is this?"}],
}
CASES = [(api, n) for api, shapes in QUEUED.items() for n in range(len(shapes))]
TARGETS = [
    "outside file",
    "/etc/passwd",
    "/proc/self/environ",
    "ledger",
    "another browser's upload",
]


def _leaks(served, client, output: str, path: str, mark: str) -> list[str]:
    """Every way the target's bytes came back: in the output, or at a path it named."""
    found = [f"output: {output[:200]}"] if mark in output and "root:" != mark else []
    for named in set(paths_in_output(output)) | {path}:
        for route in ("/gradio_api/file=", "/gradio_api/file/"):
            got = client.get(route + named)
            if got.status_code == 200 and mark.encode() in got.content:
                found.append(f"{route}{named}")
    return found


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(("api", "shape"), CASES)
def test_a_named_path_never_comes_back_through_a_queued_event(app, api, shape, target):
    served, targets, _ = app
    path, mark = targets[target]
    bob = served.browser()
    status, output = join(bob, api, QUEUED[api][shape](path))
    assert not _leaks(served, bob, output, path, mark)
    # Refused: 403 at the door, the handler's own refusal, or Gradio's (a bare string).
    assert (
        status == 403
        or "not uploaded from this browser" in output
        or '"success": false' in output.replace('"success":false', '"success": false')
    ), output


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("api", ["transcribe", "look_at_picture"])
def test_a_named_path_never_comes_back_through_the_rest_api(app, api, target):
    served, targets, _ = app
    path, mark = targets[target]
    bob = served.browser()
    status, output = call(bob, api, [file_data(path)] + (["what?"] if api != "transcribe" else []))
    assert not _leaks(served, bob, output, path, mark)
    assert status == 403, (status, output[:300])


def test_nothing_was_copied_into_the_upload_folder(app):
    served, targets, payslip = app
    # Runs after the cases above (module order): none of them left a copy behind.
    marks = [m.encode() for name, (_, m) in targets.items()]
    copies = [
        p
        for p in served.settings.uploads_dir.rglob("*")
        if p.is_file() and str(p) != payslip and any(m in p.read_bytes() for m in marks)
    ]
    assert copies == []


def test_own_uploads_still_work_and_the_ledger_is_never_served(app):
    served, targets, payslip = app
    ana = served.browser()
    [mine] = ana.post(
        "/gradio_api/upload", files={"files": ("note.txt", b"remember the milk", "text/plain")}
    ).json()
    status, output = join(ana, "chat", _chat_box(mine))
    assert status == 200 and "process_completed" in output
    assert "not uploaded from this browser" not in output
    assert mine in paths_in_output(output)  # the attachment shows in the chat
    for spelled in (
        str(served.settings.ledger_path),
        "/etc/passwd",
        "/proc/self/environ",
        "/etc/passwd%00.png",
        str(served.settings.home / "chats.sqlite"),
    ):
        got = ana.get(f"/gradio_api/file={spelled}")
        assert got.status_code == 404, (spelled, got.status_code)


class _Request:  # what the handlers read of a gr.Request
    def __init__(self, cookie: str | None = None, username: str | None = None):
        self.headers = {"cookie": f"assistant_session={cookie}"} if cookie else {}
        self.username, self.session_hash = username, "s1"


def test_the_handlers_refuse_a_foreign_path_even_behind_a_broken_gate(assistant, fake_chat):
    """Defence in depth: the chat and the Documents tab check again, not only the door."""
    from assistant.web.access import access_for
    from assistant.web.ui.app import build_app

    demo = build_app(assistant)
    fns = {f.api_name: f.fn for f in demo.fns.values()}
    uploads = assistant.settings.uploads_dir / "abc"
    uploads.mkdir(parents=True)
    (uploads / "mine.txt").write_text("mine")
    access_for(assistant.settings).owners.record([str(uploads / "mine.txt")], "ana-cookie")
    for path, who in (
        ("/etc/passwd", "ana-cookie"),
        (str(assistant.settings.ledger_path), "ana-cookie"),
        (str(uploads / "mine.txt"), "bob-cookie"),
    ):
        updates = list(
            fns["chat"].handler(
                {"text": "read it", "files": [path]}, [], None, request=_Request(who)
            )
        )
        assert len(updates) == 1 and updates[0].chat == []  # nothing shown, nothing run
        said = fns["index_documents"]([path], False, request=_Request(who))[0]
        assert "not uploaded from this browser" in said
    assert fake_chat.seen == [] and assistant.store.documents(["user-local", "shared"]) == []
    ok = list(
        fns["chat"].handler(
            {"text": "read it", "files": [str(uploads / "mine.txt")]},
            [],
            None,
            request=_Request("ana-cookie"),
        )
    )
    assert ok[-1].chat[0] == {"role": "user", "content": {"path": str(uploads / "mine.txt")}}


def test_identical_bytes_uploaded_again_do_not_take_the_file_from_its_owner(app):
    served, _, _ = app
    ana, bob, eve = served.browser(), served.browser(), served.browser()
    same = {"files": ("scan.txt", b"the same bytes 81c2", "text/plain")}
    [first] = ana.post("/gradio_api/upload", files=same).json()
    [second] = bob.post("/gradio_api/upload", files=same).json()
    assert first == second  # Gradio names an upload after its bytes
    assert ana.get(f"/gradio_api/file={first}").status_code == 200  # still ana's
    assert bob.get(f"/gradio_api/file={first}").status_code == 200  # and bob's, who has them
    assert eve.get(f"/gradio_api/file={first}").status_code == 404  # nobody else's
