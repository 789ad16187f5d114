"""POST /v1/images/generations: a picture from a prompt, returned as base64."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi import Request as HttpRequest
from starlette.concurrency import run_in_threadpool

from assistant.web.api.body import json_body, number, only_one
from assistant.web.api.errors import ApiError, raise_for
from assistant.web.api.shared import Api, extra, session
from models.base import PictureOptions, Request


def routes(api: Api) -> APIRouter:
    router = APIRouter()

    @router.post("/images/generations")
    async def images(http: HttpRequest, user: str = Depends(api.caller)):
        body = await json_body(http)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ApiError(400, "'prompt' must be a non-empty string.", param="prompt")
        model = api.model(body.get("model"), "image_generation")
        only_one(body)
        # Never left to the router: this route asks for a picture whatever the words.
        request = Request(
            text=prompt,
            model=model,
            session_id=session(body, user),
            user=user,
            task="image_generation",
            options=_options(body),
        )
        outcome = await run_in_threadpool(api.ask, request, "api")
        raise_for(outcome)
        import base64

        return {
            "created": int(time.time()),
            "data": [
                {
                    "b64_json": base64.b64encode(Path(f).read_bytes()).decode(),
                    "revised_prompt": prompt,
                }
                for f in outcome.result.files
            ],
            "assistant": extra(outcome),
        }

    return router


def _options(body: dict) -> PictureOptions:
    """The picture options the body sets, checked: steps, guidance, seed, size, negative."""
    options: dict[str, float | str] = {}
    for key, name, low, high, whole in (
        ("steps", "steps", 1, 100, True),
        ("guidance_scale", "guidance", 0, 30, False),
        ("seed", "seed", 0, 2**32 - 1, True),
    ):
        if body.get(key) is not None:
            options[name] = float(number(body, key, low, high, whole))
    size = body.get("size")
    if size is not None:  # OpenAI's "WIDTHxHEIGHT"
        try:
            width, height = (int(n) for n in str(size).lower().split("x"))
        except ValueError:
            raise ApiError(400, "'size' must look like '512x512'.", param="size") from None
        options.update(width=float(width), height=float(height))
    negative = body.get("negative_prompt")
    if isinstance(negative, str) and negative.strip():
        options["negative"] = negative.strip()
    return PictureOptions(**options)
