"""POST /v1/embeddings: vectors from the embedding model that retrieval uses."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi import Request as HttpRequest
from starlette.concurrency import run_in_threadpool

from assistant.web.api.body import json_body
from assistant.web.api.errors import ApiError, raise_for
from assistant.web.api.shared import Api, extra, session

MAX_EMBED_INPUTS = 2048  # OpenAI's own cap per call


def routes(api: Api) -> APIRouter:
    router = APIRouter()

    @router.post("/embeddings")
    async def embeddings(http: HttpRequest, user: str = Depends(api.caller)):
        body = await json_body(http)
        texts = _inputs(body.get("input"))
        model = api.model(body.get("model"), "rag")
        outcome, vectors = await run_in_threadpool(
            api.embed, texts, model, session(body, user), "api", user
        )
        raise_for(outcome)
        tokens = int(outcome.result.usage.units_in)
        return {
            "object": "list",
            "model": outcome.route.model,
            "data": [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "assistant": extra(outcome),
        }

    return router


def _inputs(texts) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    if (
        not isinstance(texts, list)
        or not texts
        or len(texts) > MAX_EMBED_INPUTS
        or not all(isinstance(t, str) and t.strip() for t in texts)
    ):
        raise ApiError(
            400,
            f"'input' must be a non-empty string or a list of 1 to "
            f"{MAX_EMBED_INPUTS} non-empty strings.",
            param="input",
        )
    return texts
