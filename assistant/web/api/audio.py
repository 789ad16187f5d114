"""POST /v1/audio/transcriptions: a recording (multipart) to text, OpenAI's three formats."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi import Request as HttpRequest
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from assistant.web.api.body import FORM_OVERHEAD, check_length, counting, media_type, save_upload
from assistant.web.api.errors import ApiError, raise_for
from assistant.web.api.shared import Api, extra, session
from models.base import Request


def routes(api: Api) -> APIRouter:
    router = APIRouter()

    @router.post("/audio/transcriptions")
    async def transcriptions(http: HttpRequest, user: str = Depends(api.caller)):
        form = await _form(http, api.settings.max_upload_bytes)
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
        model = api.model(form.get("model"), "asr")
        settings = api.settings
        path = await save_upload(upload, settings.uploads_dir / "api", settings.max_upload_bytes)
        request = Request(
            text="transcribe",
            attachments=(path,),
            model=model,
            task="asr",
            session_id=session({"user": form.get("user")}, user),
            user=user,
            transcribe_only=True,  # the transcript is the answer, never routed on
        )
        outcome = await run_in_threadpool(api.ask, request, "api")
        raise_for(outcome)
        return _formatted(outcome, fmt)

    return router


async def _form(http: HttpRequest, limit: int):
    if media_type(http) != "multipart/form-data":
        raise ApiError(415, "Send the recording as multipart/form-data with a 'file' field.")
    check_length(http, limit, "recording")
    # Counted while it arrives (a chunked body has no Content-Length): past the limit
    # the parser stops, rather than spooling the whole body to disk first.
    counted = HttpRequest(http.scope, counting(http.receive, limit + FORM_OVERHEAD, "recording"))
    return await counted.form()


def _formatted(outcome, fmt: str):
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
        "assistant": extra(outcome),
    }
