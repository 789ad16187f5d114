"""POST /v1/chat/completions: OpenAI's messages in (text, and pictures inline as data:
URLs), one completion out, whole or streamed as server-sent events."""

from __future__ import annotations

import json
import threading
import time
import uuid

from fastapi import APIRouter, Depends
from fastapi import Request as HttpRequest
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from assistant.flow.outcome import Outcome
from assistant.flow.service import Assistant
from assistant.web.api.body import json_body, number, only_one, save_data_url
from assistant.web.api.errors import STATUS, ApiError, raise_for
from assistant.web.api.shared import Api, extra, session, usage
from assistant.web.space import gpu
from models.base import Message, Request

ROLES = {"system", "developer", "user", "assistant"}


def routes(api: Api) -> APIRouter:
    router = APIRouter()

    @router.post("/chat/completions")
    async def chat(http: HttpRequest, user: str = Depends(api.caller)):
        body = await json_body(http)
        request, stream, include_usage = chat_request(body, api, user)
        if not stream:
            outcome = await run_in_threadpool(api.ask, request, "api")
            return _completion(outcome)
        return StreamingResponse(
            _sse(api.assistant, request, include_usage), media_type="text/event-stream"
        )

    return router


def _text(content, where: str, images: list | None = None) -> str:
    """A message's content as text: a string, or OpenAI's list of parts.

    Image parts (data: URLs only: this server fetches nothing) are appended
    to ``images`` when given, refused otherwise.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "image_url" and images is not None:
                image = part.get("image_url")
                url = image.get("url", "") if isinstance(image, dict) else image
                if not isinstance(url, str) or not url.startswith("data:image/"):
                    raise ApiError(
                        400,
                        f"{where}: send the picture inline as a data:image/... "
                        "URL; this server does not fetch URLs.",
                        param="messages",
                    )
                images.append(url)
            elif kind == "text":
                parts.append(str(part.get("text", "")))
            else:
                raise ApiError(
                    400,
                    f"{where}: parts must be text, or image_url in the last user message.",
                    param="messages",
                )
        return "".join(parts)
    raise ApiError(
        400, f"{where}: 'content' must be a string or a list of text parts.", param="messages"
    )


def _turns(messages) -> tuple[list[Message], list[str]]:
    """The messages as turns, and the data: URLs of the last one's pictures."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list.", param="messages")
    turns, images = [], []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ApiError(
                400,
                f"messages[{i}] needs a role of system, developer, user or assistant.",
                param="messages",
            )
        role = "system" if m["role"] == "developer" else m["role"]
        last = i == len(messages) - 1
        turns.append(
            Message(role, _text(m.get("content"), f"messages[{i}]", images if last else None))
        )
    if turns[-1].role != "user":
        raise ApiError(400, "The last message must be the user's.", param="messages")
    return turns, images


def chat_request(body: dict, api: Api, user: str = "local") -> tuple[Request, bool, bool]:
    """(the Request, whether to stream, whether the stream ends with usage) for ``body``."""
    turns, images = _turns(body.get("messages"))
    settings = api.settings
    attachments = tuple(
        save_data_url(url, settings.uploads_dir / "api", settings.max_upload_bytes)
        for url in images
    )
    limit = settings.max_new_tokens
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", limit))
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ApiError(400, "'max_tokens' must be a positive integer.", param="max_tokens")
    temperature = number({"temperature": 0, **body}, "temperature", 0, 2)
    if body.get("top_p") is not None:  # accepted as OpenAI's, within its range
        number(body, "top_p", 0, 1)
    if body.get("seed") is not None:
        number(body, "seed", -(2**63), 2**63 - 1, integer=True)
    only_one(body)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false.", param="stream")
    options = body.get("stream_options") or {}
    request = Request(
        text=turns[-1].content,
        history=tuple(turns[:-1]),
        session_id=session(body, user),
        attachments=attachments,
        model=api.model(body.get("model"), "text"),
        user=user,
        max_new_tokens=min(max_tokens, limit),
        temperature=float(temperature),
    )
    return request, stream, bool(isinstance(options, dict) and options.get("include_usage"))


def _completion(outcome: Outcome) -> dict:
    raise_for(outcome)
    return {
        "id": f"chatcmpl-{outcome.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": outcome.route.model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": outcome.result.text},
            }
        ],
        "usage": usage(outcome),
        "assistant": extra(outcome),
    }


def _chunk(cid: str, model: str, delta: dict, finish: str | None = None, **more) -> str:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **more,
    }
    return f"data: {json.dumps(body)}\n\n"


async def _sse(assistant: Assistant, request: Request, include_usage: bool):
    """Server-sent events for one streamed completion; a hang-up stops the model."""
    cancel = threading.Event()
    steps = gpu(assistant.handle)(request, source="api", cancel=cancel)
    cid, model = f"chatcmpl-{uuid.uuid4().hex}", request.model or "auto"
    done = streamed = False
    try:
        yield _chunk(cid, model, {"role": "assistant", "content": ""})
        while True:
            item = await run_in_threadpool(next, steps, None)
            if item is None:
                break
            if isinstance(item, Outcome):
                done = True
                if item.status != "ok":
                    status, kind = STATUS.get(item.error_type or "", (500, "server_error"))
                    # Headers are gone: the error travels as an event, as OpenAI does.
                    error = {"message": item.error, "type": kind, "code": status}
                    yield f"data: {json.dumps({'error': error})}\n\n"
                    break
                model = item.route.model if item.route else model
                text = item.result.text if item.result else ""
                if text and not streamed:  # a model that answers whole (a picture read)
                    yield _chunk(cid, model, {"content": text})
                yield _chunk(cid, model, {}, "stop")
                if include_usage:
                    body = json.loads(_chunk(cid, model, {})[6:])
                    body.update(choices=[], usage=usage(item), assistant=extra(item))
                    yield f"data: {json.dumps(body)}\n\n"
                break
            if isinstance(item, str):  # Progress of a picture is not chat text
                streamed = True
                yield _chunk(cid, model, {"content": item})
        yield "data: [DONE]\n\n"
    finally:
        if not done:
            # The client went away (or the server is stopping): stop generating
            # at the next token and let the ledger close the row, off this task.
            cancel.set()
            threading.Thread(target=lambda: [None for _ in steps], daemon=True).start()
