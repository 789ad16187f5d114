"""#17 medium: hostile /v1 bodies get a clear 4xx in OpenAI's error shape, never a 500
with a traceback, and an oversized body is refused while it arrives, not after.
"""

from __future__ import annotations

import httpx
import pytest

from assistant.settings import Settings
from tests.security.served import serve

HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("apiin") / "home"
    with serve(Settings(home=home, max_upload_mb=1)) as s:
        yield s


def _post(served, path: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{served.url}{path}", timeout=60, **kwargs)


def _error(got: httpx.Response, status: int, param: str | None = None) -> dict:
    assert got.status_code == status, (got.status_code, got.text[:300])
    error = got.json()["error"]
    assert error["message"] and "Traceback" not in got.text
    if param:
        assert error["param"] == param, error
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HELLO, "temperature": True}, "temperature"),
        ({"messages": HELLO, "n": 1000}, "n"),
        ({"messages": HELLO, "n": -1}, "n"),
        ({"messages": HELLO, "top_p": 5}, "top_p"),
        ({"messages": HELLO, "seed": 1e300}, "seed"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": "http://example.com/a.png"}],
                    }
                ]
            },
            "messages",
        ),
    ],
)
def test_bad_chat_fields_are_named_in_a_400(served, body, param):
    _error(_post(served, "/v1/chat/completions", json={"model": "auto", **body}), 400, param)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "a red circle", "seed": 1e300}, "seed"),
        ({"prompt": "a red circle", "steps": 10**9}, "steps"),
        ({"prompt": "a red circle", "n": 1000}, "n"),
    ],
)
def test_bad_picture_fields_are_named_in_a_400(served, body, param):
    _error(_post(served, "/v1/images/generations", json=body), 400, param)


def test_json_that_is_not_quite_json_is_a_400(served):
    for raw in (
        b'{"messages": [{"role": "user", "content": "hi"}], "seed": Infinity}',
        b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ):
        _error(
            _post(
                served,
                "/v1/chat/completions",
                content=raw,
                headers={"content-type": "application/json"},
            ),
            400,
        )


def test_a_cross_site_text_plain_body_is_not_taken_for_json(served):
    body = b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}'
    for kind in (
        "text/plain; x=application/json",
        "text/plain;application/json",
        "application/x-www-form-urlencoded; application/json",
    ):
        _error(
            _post(served, "/v1/chat/completions", content=body, headers={"content-type": kind}), 415
        )


def _send_until_answered(served, path: str, content_type: str, head: bytes) -> tuple[int, int]:
    """Stream a chunked body of up to 64 MB, 1 MB at a time, over a raw socket, until the
    server answers; (MB sent by then, status). A server that reads everything before it
    answers makes this send all 64."""
    import select
    import socket
    from urllib.parse import urlparse

    where = urlparse(served.url)
    sock = socket.create_connection((where.hostname, where.port), timeout=30)
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {where.hostname}:{where.port}\r\n"
        f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + f"{len(head):x}\r\n".encode()
        + head
        + b"\r\n"
    )
    chunk = b"x" * (1 << 20)
    sent = 0
    try:
        while sent < 64:
            if select.select([sock], [], [], 0.05)[0]:
                break
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += 1
        answer = sock.recv(4096)
    except OSError:  # the server hung up on the rest: a refusal too
        return sent, 413
    finally:
        sock.close()
    return sent, int(answer.split(b" ", 2)[1])


def test_an_endless_chunked_json_body_is_cut_off_while_it_arrives(served):
    sent, status = _send_until_answered(
        served, "/v1/chat/completions", "application/json", b'{"a": "'
    )
    assert status == 413 and sent < 8, (status, f"{sent} MB were sent before the answer")


def test_an_endless_chunked_recording_is_cut_off_while_it_arrives(served):
    head = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n"
    )
    sent, status = _send_until_answered(
        served, "/v1/audio/transcriptions", "multipart/form-data; boundary=b", head
    )
    assert status == 413 and sent < 8, (status, f"{sent} MB were sent before the answer")


def test_a_nul_byte_in_a_file_path_is_a_404_not_a_500(served):
    for path in ("/etc/passwd%00.png", "%00", "/tmp/%00/x"):
        got = httpx.get(f"{served.url}/gradio_api/file={path}")
        assert got.status_code == 404, (path, got.status_code)
