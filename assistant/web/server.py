"""One process, one port: the Gradio UI at / and the OpenAI-compatible API at /v1.

Both share one Assistant (router, pool, ledger), so a model loaded for the
browser serves API calls too, and API traffic shows in the cost panel.

``serve()`` is the one way the app is served: app.py (``make run`` and the
Space) and ``python -m assistant serve`` both call it. This module imports the
UI and the API, never the other way round.
"""

from __future__ import annotations

import asyncio
import logging
import os

from assistant.settings import Settings


def build_server(settings: Settings, progress=print):
    """(ASGI app, Assistant): the UI mounted at / on a FastAPI app that carries /v1."""
    import gradio as gr
    from fastapi import FastAPI

    from assistant.web.access import access_for
    from assistant.web.api import add_api
    from assistant.web.owners import UploadOwners
    from assistant.web.ui import build

    demo, assistant = build(settings, progress)
    app = FastAPI(title="Assistant API", docs_url=None, redoc_url=None)
    add_api(app, assistant)  # before the UI, whose routes would otherwise match first
    # A bounded queue: past 64 waiting events Gradio answers "busy", never a 5xx.
    demo.queue(default_concurrency_limit=4, max_size=64)
    app = gr.mount_gradio_app(app, demo, path="", **launch_options(settings))
    # Gradio checks that an event's input files were uploaded (and an output's
    # files are allowed) only once `has_launched` is set, which launch() does
    # and mount_gradio_app() does not: without it any server path a client
    # names is copied into the cache and served. Nothing else reads the flag.
    demo.has_launched = True
    # Outermost: files named by a request must be this browser's own uploads,
    # and an upload is served back only to the browser that sent it.
    user_for = _users(app, settings)
    app.add_middleware(
        UploadOwners,
        access=access_for(settings),
        user_for=user_for,
        may_read_kept=_kept_reader(assistant, user_for),
        settings=settings,
    )
    return app, assistant


def launch_options(settings=None) -> dict:
    """How Gradio mounts the UI: upload cap, MCP, login, the look, and which paths it may serve."""
    from assistant.web.ui.layout import CSS, ON_LOAD, SAMPLES

    # Uploads larger than this are refused by Gradio before they reach us.
    # Agents call the tools of assistant/web/ui/tools.py at /gradio_api/mcp/.
    options = {
        "max_file_size": "200mb",
        "show_error": False,
        "mcp_server": True,
        "css": CSS,
        "js": ON_LOAD,
    }
    if settings is not None and settings.auth:
        # Gradio's MCP server calls the app through a client that cannot log
        # in, so behind a login it would list tools and refuse every call.
        # Agents use /v1 with ASSISTANT_API_KEY there instead.
        options["mcp_server"] = False
        options["auth"] = list(settings.auth)  # Gradio's login page; user_of() reads the name
        options["auth_message"] = "Log in: each account has its own chats, documents and quota."
    if settings is not None:
        # Kept copies of indexed documents, so a cited recording plays from its timestamp.
        settings.kept_dir.mkdir(parents=True, exist_ok=True)
        # Pictures, speech and exports the app writes: Gradio copies an output into its
        # cache only from an allowed folder (or the checkout, or /tmp). The samples
        # are the welcome's example recording.
        options["allowed_paths"] = [
            str(settings.kept_dir),
            str(settings.home / "outputs"),
            str(settings.home / "exports"),
            str(SAMPLES),
        ]
        # Never served or copied, whatever else allows them (blocked wins in Gradio):
        # the app's own databases, and the system's secrets.
        options["blocked_paths"] = blocked_paths(settings)
    return options


def blocked_paths(settings) -> list[str]:
    home = settings.home.resolve()
    databases = [
        str(p)
        for pattern in ("*.sqlite*", "documents/*.sqlite*")
        for p in sorted(home.glob(pattern))
    ]
    for name in (
        "ledger.sqlite",
        "chats.sqlite",
        "upload_owners.sqlite",
        "documents/documents.sqlite",
    ):
        databases += [str(home / (name + tail)) for tail in ("", "-wal", "-shm", "-journal")]
    return sorted(set(databases)) + [
        str(home / "documents" / "chroma"),
        "/proc",
        "/etc",
        "/sys",
        "/root",
        "/dev",
    ]


def _users(app, settings: Settings):
    """user_for(Cookie header, browser cookie, client address): who a UI request acts as.

    The login when ASSISTANT_AUTH is set (None without one: Gradio refuses those);
    in public mode a guest per browser, so strangers share no chats, documents or
    quota; otherwise "local", the one person at this machine.
    """
    from starlette.routing import Mount

    from assistant.web.access import guest_of, login_of

    gradio_app = next(r.app for r in app.routes if isinstance(r, Mount))

    def user_for(cookie_header: str | None, session: str | None, host: str | None):
        login = login_of(cookie_header, gradio_app.tokens, gradio_app.cookie_id)
        if login or settings.auth:
            return login
        if settings.public:
            return guest_of(session or f"address {host}")
        return "local"

    return user_for


def _kept_reader(assistant, user_for):
    """Whether a request's user may read a kept document: one of its collections holds it."""
    from assistant.knowledge.rag import collections_for

    def may_read(kept, cookie_header: str | None, session: str | None, host: str | None):
        user = user_for(cookie_header, session, host)
        if user is None:
            return False
        return bool(
            assistant.store.collections_keeping(kept.parent.name) & set(collections_for(user))
        )

    return may_read


def serve(settings: Settings) -> None:
    """Build the app and serve it until Ctrl-C or SIGTERM (uvicorn handles both)."""
    import uvicorn

    from assistant.web.space import ensure_packs, on_space

    if on_space():
        # Spaces cannot pip-install the weight packs with --no-deps from
        # requirements.txt; they go into ASSISTANT_HOME once (see assistant/web/space.py).
        settings.ensure_home()
        ensure_packs(settings.home)
    app, _ = build_server(settings)
    # Gradio's own variables, so Spaces and `make run` configure it the usual way.
    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
    print(f"Serving the app on http://{host}:{port}/ and the API on http://{host}:{port}/v1")
    # An open browser tab keeps a stream to the queue: without a bound on the
    # graceful shutdown, Ctrl-C waited on it for ever and a second one printed
    # tracebacks. One second lets a finishing response end; the streams still
    # open are then cancelled, which is the stop asked for, not an error.
    logging.getLogger("uvicorn.error").addFilter(_not_a_cancelled_stream)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=1)
    except KeyboardInterrupt:
        pass
    print("Stopped.", flush=True)


def _not_a_cancelled_stream(record: logging.LogRecord) -> bool:
    cancelled = record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError)
    return not (cancelled or "timeout graceful shutdown" in record.getMessage())
