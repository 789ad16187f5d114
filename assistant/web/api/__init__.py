"""OpenAI-compatible REST endpoints, served by the same process as the UI.

Every call goes through the same router, pool and ledger as the browser, so
API traffic shows in the cost panel (source "api"). The shapes follow
OpenAI's API closely enough for the official client: chat completions
(streamed or not), models, embeddings, audio transcriptions and image
generations. ``model: "auto"`` lets the router choose; a catalog id pins
the model; OpenAI's own names map to our defaults (whisper-1 → the default
speech model). Errors use OpenAI's shape, {"error": {"message", "type",
"param", "code"}}, with a 4xx status for anything the caller can fix.

A module per route group (chat, audio, images, embeddings, model_list); the
caller is a FastAPI dependency (``Api.caller`` in shared.py); bodies are read
as hostile in body.py.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi import Request as HttpRequest

from assistant.flow.service import Assistant
from assistant.web.api import audio, chat, embeddings, images, model_list
from assistant.web.api.body import MAX_JSON_BYTES
from assistant.web.api.errors import ApiError
from assistant.web.api.shared import Api
from models.base import BadInput

__all__ = ["MAX_JSON_BYTES", "ApiError", "add_api"]

GROUPS = (model_list, chat, embeddings, audio, images)


def add_api(app: FastAPI, assistant: Assistant) -> None:
    """Mount /v1 on ``app``; every failure becomes an OpenAI-shaped error."""
    api = Api.of(assistant)
    router = APIRouter(prefix="/v1")
    for group in GROUPS:
        router.include_router(group.routes(api))

    @router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def unknown(rest: str):
        raise ApiError(
            404,
            f"There is no /v1/{rest[:100]} here. Routes: /v1/models, "
            "/v1/chat/completions, /v1/embeddings, /v1/audio/transcriptions, "
            "/v1/images/generations.",
            code="unknown_url",
        )

    app.include_router(router)

    @app.exception_handler(ApiError)
    async def api_error(http: HttpRequest, err: ApiError):
        return err.response()

    @app.exception_handler(BadInput)
    async def bad_input(http: HttpRequest, err: BadInput):
        return ApiError(400, str(err)).response()
