"""One process, one port: the Gradio UI at / and the OpenAI-compatible API at /v1.

Both share one Assistant (router, pool, ledger), so a model loaded for the
browser serves API calls too, and API traffic shows in the cost panel.
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

    from assistant.api import add_api
    from assistant.owners import UploadOwners
    from assistant.ui import build
    from assistant.ui.app import launch_options

    demo, assistant = build(settings, progress)
    app = FastAPI(title="Assistant API", docs_url=None, redoc_url=None)
    add_api(app, assistant)  # before the UI, whose routes would otherwise match first
    # A bounded queue: past 64 waiting events Gradio answers "busy", never a 5xx.
    demo.queue(default_concurrency_limit=4, max_size=64)
    app = gr.mount_gradio_app(app, demo, path="", **launch_options(settings))
    # Outermost: an upload is served back only to the browser that sent it.
    app.add_middleware(UploadOwners, db_path=settings.upload_owners_path)
    return app, assistant


def serve(settings: Settings) -> None:
    import uvicorn

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
