"""The file gate in front of the Gradio app: uploads stay with their browser.

Gradio keeps uploads under a hashed folder and serves any of them to
whoever asks for the path (behind the login, if there is one, but not per
user or per browser), and it takes any path a client names as an input.
A recording or a photo is private, and no other server file is anyone's
business, so this ASGI middleware, wrapped around the whole app:

- gives each browser a random cookie (``assistant_session``, HttpOnly) on
  its first page, config or upload, so gradio_client and the MCP server's
  own client (which keep the cookies of /config) carry one too;
- records which cookie each uploaded path was handed to, in SQLite inside
  ASSISTANT_HOME (assistant/web/access.py), so it holds across restarts;
- refuses (403, before Gradio copies anything) an event whose data names a
  file this browser may not use: another's upload, or anything outside the
  upload folder, such as ``/etc/passwd`` or the ledger (access.py's rule);
- answers 404 to a ``/gradio_api/file=`` request for a recorded upload from
  any other browser, or for any file outside the upload folder and the
  documents' kept copies, the same answer as for a path that does not exist;
- sends kept documents as downloads, never as a page of this origin: an
  indexed .html must not run its scripts here.

Files Gradio wrote itself (generated pictures, cached outputs) are not
uploads and are served as Gradio decides.
"""

from __future__ import annotations

import json
import math
import mimetypes
import secrets
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool

from assistant.web.access import (
    COOKIE,
    NOT_YOURS,
    USER_HEADER,
    FileAccess,
    has_api_key,
    host_allowed,
    is_url,
    paths_in,
    session_of,
)

MAX_AGE = 30 * 24 * 3600  # a month: an old chat's attachments still show after a restart
UPLOAD = "/gradio_api/upload"
FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/")
# Where a browser or a program hands data to an event (queue/join, call, run, api,
# stream, component_server); the MCP server reaches the app through them too.
EVENT_PREFIX = "/gradio_api/"
NOT_EVENTS = (UPLOAD, "/gradio_api/mcp", "/gradio_api/process_recording")
MAX_EVENT_BYTES = 16 * 2**20  # a chat's history with its turns; past this, a mistake or an attack
# Pages that mint the cookie: the app's page, its config (what gradio_client reads first).
MINT = ("/", "/config", "/config/")
# Shown inline from the kept documents: media players and pictures, never markup or SVG.
INLINE = ("audio/", "video/", "image/png", "image/jpeg", "image/gif", "image/webp")
# /v1 requests running or waiting at once; past this a caller is told to come back.
MAX_API_IN_FLIGHT = 32
RETRY_AFTER_S = 5


class UploadOwners:
    def __init__(
        self,
        app,
        access: FileAccess,
        user_for: Callable | None = None,
        may_read_kept: Callable | None = None,
        settings=None,
    ):
        # user_for(Cookie header, browser cookie, address) -> user or None, and
        # may_read_kept(kept file, the same three) -> bool: assistant/web/server.py, which
        # holds the store and Gradio's logins. Without them: everyone is "local".
        self.app = app
        self.access = access
        self.user_for = user_for or (lambda header, cookie, host: "local")
        self.may_read_kept = may_read_kept or (lambda path, header, cookie, host: True)
        self.settings = settings
        self.logins = LoginThrottle()
        self.api_in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        settings = self.settings
        if settings is not None:
            if not host_allowed(_header(scope, b"host"), settings.allowed_hosts):
                # DNS rebinding: a page on another name must not reach this server.
                return await _refuse(
                    send,
                    400,
                    "This server does not answer to that host name (ASSISTANT_ALLOWED_HOSTS).",
                )
            if path.startswith("/gradio_api/mcp") and not has_api_key(
                settings, _header(scope, b"authorization")
            ):
                return await _refuse(
                    send,
                    401,
                    "The MCP server needs the API key: send 'Authorization: Bearer <key>'.",
                )
        if path.startswith("/v1/"):
            return await self._api(scope, receive, send)
        if path in ("/login", "/login/") and method == "POST":
            return await self._login(scope, receive, send)
        cookie = _cookie(scope)
        if cookie is None and (path == UPLOAD or (method == "GET" and path in MINT)):
            cookie = secrets.token_urlsafe(24)
            send = _setting_cookie(send, cookie)
        scope = self._with_user(scope, cookie)  # (/v1 reads its caller from its credential)
        if path == UPLOAD and method == "POST":
            return await self._upload(scope, receive, send, cookie)
        for route in FILE_ROUTES:
            if path.startswith(route):
                return await self._file(scope, receive, send, path[len(route) :], cookie)
        if method == "POST" and path.startswith(EVENT_PREFIX) and not path.startswith(NOT_EVENTS):
            return await self._event(scope, receive, _retry_after(send), cookie)
        return await self.app(scope, receive, send)

    async def _api(self, scope, receive, send):
        """/v1, with a bound on requests in flight: past it, 503 and when to retry."""
        if self.api_in_flight >= MAX_API_IN_FLIGHT:
            body = json.dumps(
                {
                    "error": {
                        "message": f"The server is busy ({self.api_in_flight} requests"
                        " in progress). "
                        f"Retry in {RETRY_AFTER_S} s.",
                        "type": "server_overloaded",
                        "param": None,
                        "code": "busy",
                    }
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", str(RETRY_AFTER_S).encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            return await send({"type": "http.response.body", "body": body})
        self.api_in_flight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, _retry_after(send))
        finally:
            self.api_in_flight -= 1

    async def _login(self, scope, receive, send):
        """Gradio's login, at most LoginThrottle.FAILURES wrong passwords a minute per address."""
        host = _host(scope) or "?"
        wait = self.logins.wait(host)
        if wait:
            body = json.dumps({"detail": f"Too many wrong passwords; try again in {wait} s."})
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", str(wait).encode()),
                    ],
                }
            )
            return await send({"type": "http.response.body", "body": body.encode()})

        async def watch(message):
            if message["type"] == "http.response.start" and message["status"] >= 400:
                self.logins.failed(host)
            await send(message)

        await self.app(scope, receive, watch)

    def _with_user(self, scope, cookie: str | None):
        """The request with the user it acts as in USER_HEADER, never a client's own."""
        headers = [(k, v) for k, v in scope.get("headers", []) if k != USER_HEADER.encode()]
        user = self.user_for(_header(scope, b"cookie"), cookie, _host(scope))
        if user is not None:
            headers.append((USER_HEADER.encode(), quote(user).encode()))
        return {**scope, "headers": headers}

    async def _upload(self, scope, receive, send, owner: str):
        status, body = 0, []

        async def tee(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body") and status == 200:
                    try:
                        paths = json.loads(b"".join(body))
                    except ValueError:
                        paths = []
                    if isinstance(paths, list):
                        # A database write (PostgreSQL, when replicas share one): in a worker
                        # thread, so the event loop serves other requests meanwhile. Done
                        # before the answer goes on: the path is the browser's once it has it.
                        mine = [p for p in paths if isinstance(p, str)]
                        await run_in_threadpool(self.access.owners.record, mine, owner)
            await send(message)

        await self.app(scope, receive, tee)

    async def _file(self, scope, receive, send, wanted: str, cookie: str | None):
        real = self.access.servable(wanted)
        if real is None:
            return await _refuse(send, 404, "Not Found")
        owners = await run_in_threadpool(self.access.owners.owners, str(real))  # a query, too
        if owners and cookie not in owners:
            return await _refuse(send, 404, "Not Found")
        if not real.is_relative_to(self.access.kept):
            return await self.app(scope, receive, _nosniff(send))
        header, host = _header(scope, b"cookie"), _host(scope)
        if not await run_in_threadpool(self.may_read_kept, real, header, cookie, host):
            return await _refuse(send, 404, "Not Found")
        kind = mimetypes.guess_type(real.name)[0] or ""
        if kind.startswith(INLINE):
            return await self.app(scope, receive, _nosniff(send))
        return await self.app(scope, receive, _as_download(send, real.name))

    def _may_use_all(self, paths: list[str], cookie: str | None) -> bool:
        return all(self.access.may_use(p, cookie) for p in paths)

    async def _event(self, scope, receive, send, cookie: str | None):
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_EVENT_BYTES:
                return await _refuse(send, 413, f"The request is over {MAX_EVENT_BYTES:,} bytes.")
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            data = json.loads(body)
        except RecursionError:
            return await _refuse(send, 400, "The request's JSON is nested too deeply.")
        except ValueError:
            data = None  # not JSON: Gradio answers it as it does
        named = [p for p in paths_in(data) if not is_url(p)]
        if named and not await run_in_threadpool(self._may_use_all, named, cookie):
            return await _refuse(send, 403, NOT_YOURS)
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class LoginThrottle:
    """Wrong passwords per address in the last minute (in memory: a restart forgets)."""

    FAILURES = 5
    WINDOW_S = 60.0

    def __init__(self):
        self._failed: dict[str, deque[float]] = {}

    def _recent(self, host: str) -> deque[float]:
        seen = self._failed.setdefault(host, deque())
        while seen and time.monotonic() - seen[0] > self.WINDOW_S:
            seen.popleft()
        if len(self._failed) > 10_000:  # a flood of addresses must not grow this forever
            self._failed = {h: d for h, d in self._failed.items() if d}
        return seen

    def wait(self, host: str) -> int:
        """Seconds until ``host`` may try again; 0: now."""
        seen = self._recent(host)
        if len(seen) < self.FAILURES:
            return 0
        return max(1, math.ceil(self.WINDOW_S - (time.monotonic() - seen[0])))

    def failed(self, host: str) -> None:
        self._recent(host).append(time.monotonic())


def _retry_after(send):
    """A busy answer (Gradio's 503 "queue is full", a 429) says when to come back."""

    def change(headers):
        if any(k.lower() == b"retry-after" for k, _ in headers):
            return headers
        return headers + [(b"retry-after", str(RETRY_AFTER_S).encode())]

    async def wrapped(message):
        if message["type"] == "http.response.start" and message["status"] in (429, 503):
            message = {**message, "headers": change(list(message.get("headers", [])))}
        await send(message)

    return wrapped


def _host(scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def _header(scope, wanted: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == wanted]
    return "; ".join(values) if values else None


def _cookie(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            found = session_of(value.decode("latin-1"))
            if found is not None:
                return found
    return None


def _headers(send, change):
    async def wrapped(message):
        if message["type"] == "http.response.start":
            message = {**message, "headers": change(list(message.get("headers", [])))}
        await send(message)

    return wrapped


def _setting_cookie(send, cookie: str):
    value = f"{COOKIE}={cookie}; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax"
    return _headers(send, lambda h: h + [(b"set-cookie", value.encode())])


def _nosniff(send):
    return _headers(send, lambda h: h + [(b"x-content-type-options", b"nosniff")])


def _as_download(send, name: str):
    """Bytes to save, never to render: a kept .html or .svg runs no script here."""
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_")

    def change(headers):
        kept = [
            (k, v) for k, v in headers if k.lower() not in (b"content-type", b"content-disposition")
        ]
        return kept + [
            (b"content-type", b"application/octet-stream"),
            (b"content-disposition", f'attachment; filename="{ascii_name}"'.encode()),
            (b"x-content-type-options", b"nosniff"),
        ]

    return _headers(send, change)


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
