"""OpenAI-compatible REST endpoints, served by the same process as the UI.

Every call goes through the same router, pool and ledger as the browser, so
API traffic shows in the cost panel (source "api"). The shapes follow
OpenAI's API closely enough for the official client: chat completions
(streamed or not), models, embeddings, audio transcriptions and image
generations. ``model: "auto"`` lets the router choose; a catalog id pins
the model; OpenAI's own names map to our defaults (whisper-1 → the default
speech model). Errors use OpenAI's shape, {"error": {"message", "type",
"param", "code"}}, with a 4xx status for anything the caller can fix.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi import Request as HttpRequest
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from assistant.flow.outcome import Outcome
from assistant.flow.service import Assistant
from assistant.web.access import api_caller
from assistant.web.space import gpu
from models.base import BadInput, Message, PictureOptions, Request

MAX_JSON_BYTES = 2 * 1024 * 1024  # a chat body past this is a mistake or an attack
MAX_EMBED_INPUTS = 2048  # OpenAI's own cap per call
ROLES = {"system", "developer", "user", "assistant"}
# OpenAI's model names, mapped to the task whose default model serves them.
ALIASES = {
    "whisper-1": "asr",
    "gpt-4o-transcribe": "asr",
    "dall-e-2": "image_generation",
    "dall-e-3": "image_generation",
    "gpt-image-1": "image_generation",
    "text-embedding-3-small": "rag",
    "text-embedding-ada-002": "rag",
}
# Outcome.error_type -> (HTTP status, OpenAI error type)
STATUS = {
    "BadInput": (400, "invalid_request_error"),
    "ModelUnavailable": (503, "model_unavailable"),
    "BudgetExceeded": (429, "insufficient_quota"),
    "RateLimited": (429, "rate_limit_exceeded"),
    "Refused": (403, "refused"),
    "InternalError": (500, "server_error"),
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
    ):
        super().__init__(message)
        self.status, self.param, self.code, self.kind = status, param, code, kind

    def response(self) -> JSONResponse:
        return JSONResponse(
            {
                "error": {
                    "message": str(self),
                    "type": self.kind,
                    "param": self.param,
                    "code": self.code,
                }
            },
            status_code=self.status,
        )


def add_api(app: FastAPI, assistant: Assistant) -> None:
    """Mount /v1 on ``app``; every failure becomes an OpenAI-shaped error."""
    router = APIRouter(prefix="/v1")
    settings = assistant.settings
    # On ZeroGPU a GPU is attached only inside spaces.GPU (a no-op elsewhere),
    # as for the UI: a model the UI left on the GPU must not be run without one.
    ask, embed = gpu(assistant.ask), gpu(assistant.embed)

    def guard(http: HttpRequest) -> str:
        """The user this call acts as (access.api_caller), or 401 without a valid credential."""
        host = http.client.host if http.client else None
        user = api_caller(settings, http.headers.get("authorization"), host)
        if user is None:
            how = (
                ["'Authorization: Bearer <key>' with the key in ASSISTANT_API_KEY"]
                if settings.api_key
                else []
            )
            if settings.auth:
                how.append("'Authorization: Bearer <user>:<password>' of an ASSISTANT_AUTH login")
            raise ApiError(
                401,
                f"Missing or wrong credential: send {' or '.join(how)}.",
                code="invalid_api_key",
            )
        return user

    @router.get("/models")
    async def models(http: HttpRequest):
        guard(http)
        weights = settings.weights_dir
        data = [
            {
                "id": "auto",
                "object": "model",
                "created": 0,
                "owned_by": "assistant",
                "description": "the router chooses per request",
            }
        ]
        for entry in assistant.catalog.entries.values():
            if entry.built:
                ok, why = entry.availability(weights)
                data.append(
                    {
                        "id": entry.id,
                        "object": "model",
                        "created": 0,
                        "owned_by": "assistant",
                        "family": entry.family,
                        "tasks": list(entry.tasks),
                        "available": ok,
                        "availability": why,
                    }
                )
        return {"object": "list", "data": data}

    @router.post("/chat/completions")
    async def chat(http: HttpRequest):
        user = guard(http)
        body = await _json_body(http)
        request, stream, include_usage = _chat_request(body, assistant, user)
        if not stream:
            outcome = await run_in_threadpool(ask, request, "api")
            return _completion(outcome)
        return StreamingResponse(
            _sse(assistant, request, include_usage), media_type="text/event-stream"
        )

    @router.post("/embeddings")
    async def embeddings(http: HttpRequest):
        user = guard(http)
        body = await _json_body(http)
        texts = body.get("input")
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
        model = _model(body.get("model"), assistant, "rag")
        outcome, vectors = await run_in_threadpool(
            embed, texts, model, _session(body, user), "api", user
        )
        _raise_for(outcome)
        tokens = int(outcome.result.usage.units_in)
        return {
            "object": "list",
            "model": outcome.route.model,
            "data": [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "assistant": _extra(outcome),
        }

    @router.post("/audio/transcriptions")
    async def transcriptions(http: HttpRequest):
        user = guard(http)
        if _media_type(http) != "multipart/form-data":
            raise ApiError(415, "Send the recording as multipart/form-data with a 'file' field.")
        _check_length(http, settings.max_upload_bytes, "recording")
        # Counted while it arrives (a chunked body has no Content-Length): past the limit
        # the parser stops, rather than spooling the whole body to disk first.
        counted = HttpRequest(
            http.scope,
            _counting(http.receive, settings.max_upload_bytes + FORM_OVERHEAD, "recording"),
        )
        form = await counted.form()
        upload = form.get("file")
        if upload is None or not hasattr(upload, "read"):
            raise ApiError(400, "No 'file' field with a recording in the form.", param="file")
        fmt = str(form.get("response_format") or "json")
        if fmt not in ("json", "text", "verbose_json"):
            raise ApiError(
                400,
                f"response_format '{fmt}' is not supported; use json, text or verbose_json.",
                param="response_format",
            )
        model = _model(form.get("model"), assistant, "asr")
        path = await _save_upload(upload, settings.uploads_dir / "api", settings.max_upload_bytes)
        session = _session({"user": form.get("user")}, user)
        request = Request(
            text="transcribe",
            attachments=(path,),
            model=model,
            task="asr",
            session_id=session,
            user=user,
            transcribe_only=True,  # the transcript is the answer, never routed on
        )
        outcome = await run_in_threadpool(ask, request, "api")
        _raise_for(outcome)
        result = outcome.result
        if fmt == "text":
            return PlainTextResponse(result.text)
        if fmt == "json":
            return {"text": result.text}
        return {
            "task": "transcribe",
            "language": result.language,
            "duration": result.usage.units_in,
            "text": result.text,
            "segments": [{"id": i, **s} for i, s in enumerate(result.segments)],
            "assistant": _extra(outcome),
        }

    @router.post("/images/generations")
    async def images(http: HttpRequest):
        user = guard(http)
        body = await _json_body(http)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ApiError(400, "'prompt' must be a non-empty string.", param="prompt")
        model = _model(body.get("model"), assistant, "image_generation")
        _only_one(body)
        options: dict[str, float | str] = {}
        for key, name, low, high, whole in (
            ("steps", "steps", 1, 100, True),
            ("guidance_scale", "guidance", 0, 30, False),
            ("seed", "seed", 0, 2**32 - 1, True),
        ):
            if body.get(key) is not None:
                options[name] = float(_number(body, key, low, high, whole))
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
        # Never left to the router: this route asks for a picture whatever the words.
        request = Request(
            text=prompt,
            model=model,
            session_id=_session(body, user),
            user=user,
            task="image_generation",
            options=PictureOptions(**options),
        )
        outcome = await run_in_threadpool(ask, request, "api")
        _raise_for(outcome)
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
            "assistant": _extra(outcome),
        }

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


# --- requests in -----------------------------------------------------------


def _check_length(http: HttpRequest, limit: int, what: str) -> None:
    raw = http.headers.get("content-length")
    if raw is not None and raw.isdigit() and int(raw) > limit:
        raise ApiError(413, f"The {what} is {int(raw):,} bytes; the limit is {limit:,}.")


def _media_type(http: HttpRequest) -> str:
    """The Content-Type's media type alone: 'text/plain; x=application/json' is text."""
    return http.headers.get("content-type", "").split(";")[0].strip().lower()


async def _read_at_most(http: HttpRequest, limit: int, what: str) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit``: a chunked body has no
    Content-Length, and reading it whole first let 1 GB into memory."""
    chunks, size = [], 0
    async for chunk in http.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"The {what} is over {limit:,} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


FORM_OVERHEAD = 64 * 1024  # a form's boundaries, headers and small fields around the file


def _counting(receive, limit: int, what: str):
    """``receive`` that raises 413 once more than ``limit`` body bytes have arrived."""
    seen = 0

    async def counted():
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise ApiError(
                413, f"The {what} is over the {limit - FORM_OVERHEAD:,}-byte upload limit."
            )
        return message

    return counted


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


async def _json_body(http: HttpRequest) -> dict:
    if _media_type(http) != "application/json":
        # Also what keeps a cross-site page from posting here: a form or a "simple"
        # fetch can only send text/plain, form or multipart bodies.
        raise ApiError(415, "Send a JSON body with 'Content-Type: application/json'.")
    _check_length(http, MAX_JSON_BYTES, "request body")
    raw = await _read_at_most(http, MAX_JSON_BYTES, "request body")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ApiError(400, "The body's JSON is nested too deeply.") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(400, f"The body is not valid JSON ({err}).") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.")
    return body


def _number(body: dict, key: str, low: float, high: float, integer: bool = False):
    """body[key] if it is a number (not a boolean) within [low, high], else a 400 naming it."""
    value = body.get(key)
    kind = "a whole number" if integer else "a number"
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not low <= value <= high
        or (integer and value != int(value))
    ):
        raise ApiError(400, f"'{key}' must be {kind} from {low:g} to {high:g}.", param=key)
    return value


def _only_one(body: dict) -> None:
    """OpenAI's ``n``: several choices per call are not served here; say so, never ignore it."""
    if body.get("n", 1) != 1 or isinstance(body.get("n"), bool):
        raise ApiError(400, "'n' must be 1: this server returns one choice per request.", param="n")


def _session(body: dict, user: str) -> str:
    """The session: the caller's, split by the body's ``user`` (OpenAI's end-user id).

    The body names a session of its caller, never another caller's.
    """
    end_user = body.get("user")
    end_user = str(end_user)[:64] if end_user else "anonymous"
    return f"api-{end_user}" if user == "local" else f"api-{user}/{end_user}"


def _model(name, assistant: Assistant, task: str) -> str | None:
    """A catalog id for ``name`` (None: let the router or the task default choose)."""
    if name in (None, "", "auto"):
        return None
    if not isinstance(name, str):
        raise ApiError(400, "'model' must be a string.", param="model")
    if ALIASES.get(name) == task:
        entry = assistant.catalog.default_for(task)
        return entry.id if entry else None
    entry = assistant.catalog.entries.get(name)
    if entry is None:  # a listed model that is not built yet gets its 503 from the service
        known = ", ".join(["auto"] + [e.id for e in assistant.catalog.for_task(task) if e.built])
        raise ApiError(
            404,
            f"The model '{name[:100]}' does not exist here. For this route: {known}.",
            param="model",
            code="model_not_found",
        )
    if task not in entry.tasks:
        raise ApiError(
            400, f"The model '{name}' serves {', '.join(entry.tasks)}, not {task}.", param="model"
        )
    return entry.id


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


def _save_data_url(url: str, folder: Path, limit: int) -> Path:
    """A data:image/...;base64 URL decoded into ASSISTANT_HOME under a name of our making."""
    import base64
    import binascii

    header, _, data = url.partition(",")
    kind = header.removeprefix("data:image/").split(";")[0]
    if ";base64" not in header or kind not in ("png", "jpeg", "jpg", "gif", "webp", "bmp"):
        raise ApiError(
            400, "An image data URL must be base64 PNG, JPEG, GIF, WebP or BMP.", param="messages"
        )
    if len(data) * 3 // 4 > limit:
        raise ApiError(413, f"The picture is over the {limit:,}-byte upload limit.")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            400, "The picture's data URL is not valid base64.", param="messages"
        ) from None
    target = folder / uuid.uuid4().hex / f"image.{'jpg' if kind == 'jpeg' else kind}"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(raw)
    return target


def _chat_request(
    body: dict, assistant: Assistant, user: str = "local"
) -> tuple[Request, bool, bool]:
    messages = body.get("messages")
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
    settings = assistant.settings
    attachments = tuple(
        _save_data_url(url, settings.uploads_dir / "api", settings.max_upload_bytes)
        for url in images
    )
    limit = settings.max_new_tokens
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens", limit))
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ApiError(400, "'max_tokens' must be a positive integer.", param="max_tokens")
    temperature = _number({"temperature": 0, **body}, "temperature", 0, 2)
    if body.get("top_p") is not None:  # accepted as OpenAI's, within its range
        _number(body, "top_p", 0, 1)
    if body.get("seed") is not None:
        _number(body, "seed", -(2**63), 2**63 - 1, integer=True)
    _only_one(body)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false.", param="stream")
    options = body.get("stream_options") or {}
    request = Request(
        text=turns[-1].content,
        history=tuple(turns[:-1]),
        session_id=_session(body, user),
        attachments=attachments,
        model=_model(body.get("model"), assistant, "text"),
        user=user,
        max_new_tokens=min(max_tokens, limit),
        temperature=float(temperature),
    )
    return request, stream, bool(isinstance(options, dict) and options.get("include_usage"))


# --- results out -----------------------------------------------------------


def _raise_for(outcome: Outcome) -> None:
    if outcome.status == "ok":
        return
    status, kind = STATUS.get(outcome.error_type or "", (500, "server_error"))
    raise ApiError(status, outcome.error or "The request failed.", kind=kind)


def _extra(outcome: Outcome) -> dict:
    """What the panel shows, for API callers that want it (OpenAI clients ignore it)."""
    data = outcome.as_json()
    return {k: data.get(k) for k in ("request_id", "route", "timings", "cost")}


def _usage(outcome: Outcome) -> dict:
    usage = outcome.result.usage
    n_in, n_out = int(usage.units_in), int(usage.units_out)
    return {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}


def _completion(outcome: Outcome) -> dict:
    _raise_for(outcome)
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
        "usage": _usage(outcome),
        "assistant": _extra(outcome),
    }


def _chunk(cid: str, model: str, delta: dict, finish: str | None = None, **extra) -> str:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n"


async def _sse(assistant: Assistant, request: Request, include_usage: bool):
    """Server-sent events for one streamed completion; a hang-up stops the model."""
    cancel = threading.Event()
    steps = gpu(assistant.handle)(request, source="api", cancel=cancel)
    cid, model = f"chatcmpl-{uuid.uuid4().hex}", request.model or "auto"
    done = False
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
                yield _chunk(cid, model, {}, "stop")
                if include_usage:
                    body = json.loads(_chunk(cid, model, {})[6:])
                    body.update(choices=[], usage=_usage(item), assistant=_extra(item))
                    yield f"data: {json.dumps(body)}\n\n"
                break
            if isinstance(item, str):  # Progress of a picture is not chat text
                yield _chunk(cid, model, {"content": item})
        yield "data: [DONE]\n\n"
    finally:
        if not done:
            # The client went away (or the server is stopping): stop generating
            # at the next token and let the ledger close the row, off this task.
            cancel.set()
            threading.Thread(target=lambda: [None for _ in steps], daemon=True).start()


async def _save_upload(upload, folder: Path, limit: int) -> Path:
    """The upload inside ASSISTANT_HOME under a name of our own making (never the client's path)."""
    import re

    name = Path(str(upload.filename or "upload")).name  # drops any ../ or folders
    suffix = re.sub(r"[^A-Za-z0-9.]", "", Path(name).suffix)[:10].lower()
    target = folder / uuid.uuid4().hex / f"recording{suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                out.close()
                target.unlink()
                raise ApiError(413, f"The recording is over the {limit:,}-byte upload limit.")
            out.write(chunk)
    if size == 0:
        target.unlink()
        raise ApiError(400, "The uploaded recording is empty.", param="file")
    return target
