"""Which server files a request may use: its own uploads, never anything else.

A browser (or a program) names files by their server path: in a chat
message, a tool's argument, a reply it sends back. A path is only a
string, so anyone can write ``/etc/passwd`` or another user's upload
there. The rule, applied both where requests arrive (assistant/web/owners.py,
before Gradio copies anything) and again in every handler that takes a
file (defence in depth: a handler must not trust the layer in front):

- the file lies inside the upload folder (ASSISTANT_HOME/uploads, where
  Gradio keeps uploads and its own outputs), not in its ``api`` part
  (recordings and pictures sent to /v1, which belong to their caller);
- and, when it was uploaded, it was uploaded by this browser: the
  ``assistant_session`` cookie that owners.py gives each browser.

A file in the upload folder that nobody uploaded is one Gradio wrote for
the app (a drawn picture, a spoken reply): Gradio serves those to whoever
has the path, so taking them back as input leaks nothing new.

No Gradio and no web framework here: the same checks serve the ASGI
middleware, the Gradio handlers and the tests.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from pathlib import Path

from assistant.database import Database, Migration, SQLiteDatabase, open_database
from models.base import BadInput

COOKIE = "assistant_session"
NOT_YOURS = (
    "An attached file was not uploaded from this browser (or it has expired); attach it again."
)


class FileOwners:
    """path -> the browsers that uploaded it, in a database so it survives restarts.

    ASSISTANT_HOME/upload_owners.sqlite, or the database replicas share
    (ASSISTANT_DATABASE_URL): a file uploaded through one replica is then
    usable through another by the same browser (with the upload folder on a
    shared mount, the same path on each: docs/scaling.md).

    Gradio names an upload after a hash of its bytes, so two browsers that
    upload the same bytes get the same path: both own it (neither takes
    it from the other, and each already has the bytes).
    """

    def __init__(self, db: Database):
        self.db = db
        if isinstance(db, SQLiteDatabase):
            _adopt_first_version(db)
        db.migrate(OWNERS_MIGRATIONS, OWNERS_VERSION_TABLE)

    def record(self, paths: Iterable[str], owner: str) -> None:
        for path in paths:
            self.db.execute(
                "INSERT INTO uploads (path, owner) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (os.path.realpath(path), owner),
            )

    def owners(self, path: str) -> set[str]:
        rows = self.db.all("SELECT owner FROM uploads WHERE path = ?", (os.path.realpath(path),))
        return {r[0] for r in rows}


OWNERS_VERSION_TABLE = "uploads_schema_version"
OWNERS_MIGRATIONS = [
    # 1: as the file kept it before it was numbered (IF NOT EXISTS: such a file is adopted).
    Migration(
        "CREATE TABLE IF NOT EXISTS uploads (path TEXT NOT NULL, owner TEXT NOT NULL,"
        " PRIMARY KEY (path, owner));"
    ),
]


def _adopt_first_version(db: SQLiteDatabase) -> None:
    """The first version kept one owner per path (the last uploader won), in ``owners``."""
    if db.one("SELECT 1 FROM sqlite_master WHERE name = 'owners'"):
        with db.transaction():
            db.execute(OWNERS_MIGRATIONS[0].sql)
            db.execute("INSERT OR IGNORE INTO uploads SELECT path, owner FROM owners")
            db.execute("DROP TABLE owners")


class FileAccess:
    """The rule above for one ASSISTANT_HOME."""

    def __init__(self, uploads_dir: Path, owners: Path | Database, kept_dir: Path):
        self.uploads = Path(os.path.realpath(uploads_dir))
        self.api_uploads = self.uploads / "api"
        self.kept = Path(os.path.realpath(kept_dir))  # documents' kept copies
        self.owners = FileOwners(owners if isinstance(owners, Database) else SQLiteDatabase(owners))

    def may_use(self, path: str | os.PathLike, session: str | None) -> bool:
        """May the browser holding cookie ``session`` use the server file ``path``?"""
        real = _real(path)
        if real is None or not real.is_relative_to(self.uploads):
            return False
        if real.is_relative_to(self.api_uploads):
            return False
        owners = self.owners.owners(str(real))
        return not owners or session in owners

    def check(self, paths: Iterable[str | os.PathLike], session: str | None) -> None:
        """Raise BadInput unless every one of ``paths`` may be used (see may_use)."""
        if not all(self.may_use(p, session) for p in paths):
            raise BadInput(NOT_YOURS)

    def servable(self, path: str) -> Path | None:
        """The real file behind a /gradio_api/file= path, if the app serves it at all.

        Only uploads and Gradio's outputs (the upload folder) and documents'
        kept copies: never the ledger, the chats, /proc, /etc, the checkout.
        """
        real = _real(path)
        if real is None:
            return None
        if real.is_relative_to(self.uploads) and not real.is_relative_to(self.api_uploads):
            return real
        return real if real.is_relative_to(self.kept) else None


def _real(path: str | os.PathLike) -> Path | None:
    try:
        return Path(os.path.realpath(os.fspath(path)))
    except (ValueError, OSError, TypeError):  # NUL bytes, loops, not a path at all
        return None


@functools.cache
def _access(uploads_dir: Path, owners_db: Path, kept_dir: Path, url: str | None) -> FileAccess:
    return FileAccess(uploads_dir, open_database(url, owners_db), kept_dir)


def access_for(settings) -> FileAccess:
    """The one FileAccess of these settings (its database opened, and its table made, once)."""
    return _access(
        settings.uploads_dir,
        settings.upload_owners_path,
        settings.kept_dir,
        settings.database_url,
    )


def session_of(cookie_header: str | None) -> str | None:
    """The ``assistant_session`` cookie's value in a Cookie header, or None."""
    if not cookie_header:
        return None
    try:
        morsel = SimpleCookie(cookie_header).get(COOKIE)
    except CookieError:  # a malformed header: as if there were no cookie
        return None
    return morsel.value if morsel is not None else None


def paths_in(data) -> list[str]:
    """Every ``{"path": "..."}`` in a request's JSON, at any depth.

    Any dict with a string ``path`` counts, whatever its ``meta`` says:
    Gradio's Chatbot turns a bare ``{"path": ...}`` message into a file.
    """
    found, stack = [], [data]
    while stack:  # not recursive: a 100k-deep body must not blow the stack
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("path"), str):
                found.append(node["path"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def session_of_request(request) -> str | None:
    """The cookie of a web request (Gradio's or Starlette's), or None without one."""
    headers = getattr(request, "headers", None) if request is not None else None
    return session_of(headers.get("cookie")) if headers is not None else None


def check_files(settings, request, paths: Iterable[str | os.PathLike]) -> None:
    """For handlers: BadInput unless the requesting browser may use every one of ``paths``."""
    paths = list(paths)
    if paths:
        access_for(settings).check(paths, session_of_request(request))


def login_of(cookie_header: str | None, tokens: dict, cookie_id: str) -> str | None:
    """The user logged in through Gradio's login page, from its access-token cookie."""
    if not cookie_header:
        return None
    try:
        jar = SimpleCookie(cookie_header)
    except CookieError:
        return None
    for name in (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}"):
        if name in jar and jar[name].value in tokens:
            return tokens[jar[name].value]
    return None


# --- who a request acts as -------------------------------------------------

USER_HEADER = "x-assistant-user"  # set by owners.py on the way in; a client's own is dropped


def guest_of(secret: str) -> str:
    """A stable, unguessable user name for a browser (its cookie) or an address."""
    import hashlib

    return "guest-" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def api_caller(settings, authorization: str | None, client_host: str | None) -> str | None:
    """The user a /v1 call acts as, from its credential; None: no valid credential.

    - ``Bearer <ASSISTANT_API_KEY>``: "local" (one-person servers), or "api"
      when ASSISTANT_AUTH names accounts;
    - with ASSISTANT_AUTH, ``Bearer user:password`` (or HTTP Basic) of one of them;
    - without either setting the API is open: "local", or in public mode a
      guest per client address, so one stranger's quota is not everyone's.

    Never a field of the body: the body's ``user`` only names a session.
    """
    import base64
    import hmac

    token = None
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "bearer":
        token = value.strip()
    elif scheme.lower() == "basic":
        try:
            token = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            token = None
    if token:
        if settings.api_key and hmac.compare_digest(token.encode(), settings.api_key.encode()):
            return "api" if settings.auth else "local"
        for user, password in settings.auth:
            if hmac.compare_digest(token.encode(), f"{user}:{password}".encode()):
                return user
    if settings.auth or settings.api_key:
        return None
    return guest_of(client_host or "unknown") if settings.public else "local"


def has_api_key(settings, authorization: str | None) -> bool:
    """Whether ``Authorization`` carries ASSISTANT_API_KEY (always true when none is set)."""
    import hmac

    if not settings.api_key:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), settings.api_key.encode()
    )


def host_allowed(host_header: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether a request's Host names this server: an IP, localhost, or an allowed name."""
    import ipaddress

    host = (host_header or "").strip().lower()
    if host.startswith("["):  # [::1]:7860
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    if not name:
        return False
    if "*" in allowed or name in allowed or name == "localhost":
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
