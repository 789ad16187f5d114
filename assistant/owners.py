"""An upload is served back only to the browser that sent it.

Gradio keeps uploads under a hashed folder and serves any of them to
whoever asks for the path (behind the login, if there is one, but not per
user or per browser). A recording or a photo is private, so this ASGI
middleware, wrapped around the whole app:

- gives each browser a random cookie (``assistant_session``, HttpOnly) the
  first time it uploads;
- records which cookie each uploaded path was handed to, in SQLite inside
  ASSISTANT_HOME, so it holds across restarts;
- answers 404 to a request for a recorded upload from any other browser,
  the same answer as for a path that does not exist, so nothing is learnt.

Files Gradio wrote itself (generated pictures, cached outputs) are not
uploads and are served as Gradio decides.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from http.cookies import CookieError, SimpleCookie
from pathlib import Path

COOKIE = "assistant_session"
MAX_AGE = 30 * 24 * 3600  # a month: an old chat's attachments still show after a restart
UPLOAD = "/gradio_api/upload"
FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/")


class UploadOwners:
    def __init__(self, app, db_path: Path):
        self.app = app
        self.db_path = db_path
        self._lock = threading.Lock()
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS owners (path TEXT PRIMARY KEY, owner TEXT)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path, timeout=10)

    def record(self, paths: list[str], owner: str) -> None:
        with self._lock, self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO owners VALUES (?, ?)",
                           [(os.path.realpath(p), owner) for p in paths])  # fmt: skip

    def owner_of(self, path: str) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT owner FROM owners WHERE path = ?",
                             (os.path.realpath(path),)).fetchone()  # fmt: skip
        return row[0] if row else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]  # every request passes here: only uploads and files read more
        if path == UPLOAD and scope["method"] == "POST":
            return await self._upload(scope, receive, send, _cookie(scope))
        for route in FILE_ROUTES:
            if path.startswith(route):
                owner = self.owner_of(path[len(route):])
                if owner is not None and owner != _cookie(scope):
                    return await _not_found(send)
        return await self.app(scope, receive, send)

    async def _upload(self, scope, receive, send, cookie: str | None):
        owner = cookie or secrets.token_urlsafe(24)
        status, body = 0, []

        async def tee(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if cookie is None:
                    value = f"{COOKIE}={owner}; Path=/; Max-Age={MAX_AGE}; HttpOnly; SameSite=Lax"
                    headers = list(message.get("headers", [])) + [(b"set-cookie", value.encode())]
                    message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body") and status == 200:
                    try:
                        paths = json.loads(b"".join(body))
                    except ValueError:
                        paths = []
                    self.record([p for p in paths if isinstance(p, str)], owner)
            await send(message)

        await self.app(scope, receive, tee)


def _cookie(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                morsel = SimpleCookie(value.decode("latin-1")).get(COOKIE)
            except CookieError:  # a malformed header: as if there were no cookie
                return None
            if morsel is not None:
                return morsel.value
    return None


async def _not_found(send) -> None:
    body = b'{"detail":"Not Found"}'
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
