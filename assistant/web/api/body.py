"""Bodies in, read as if hostile: media type checked, size capped while bytes arrive (a
chunked body has no Content-Length), JSON parsed strictly, uploads saved under names of
our own making inside ASSISTANT_HOME."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from fastapi import Request as HttpRequest

from assistant.web.api.errors import ApiError

MAX_JSON_BYTES = 2 * 1024 * 1024  # a chat body past this is a mistake or an attack
FORM_OVERHEAD = 64 * 1024  # a form's boundaries, headers and small fields around the file


def check_length(http: HttpRequest, limit: int, what: str) -> None:
    raw = http.headers.get("content-length")
    if raw is not None and raw.isdigit() and int(raw) > limit:
        raise ApiError(413, f"The {what} is {int(raw):,} bytes; the limit is {limit:,}.")


def media_type(http: HttpRequest) -> str:
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


def counting(receive, limit: int, what: str):
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


async def json_body(http: HttpRequest) -> dict:
    if media_type(http) != "application/json":
        # Also what keeps a cross-site page from posting here: a form or a "simple"
        # fetch can only send text/plain, form or multipart bodies.
        raise ApiError(415, "Send a JSON body with 'Content-Type: application/json'.")
    check_length(http, MAX_JSON_BYTES, "request body")
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


def number(body: dict, key: str, low: float, high: float, integer: bool = False):
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


def only_one(body: dict) -> None:
    """OpenAI's ``n``: several choices per call are not served here; say so, never ignore it."""
    if body.get("n", 1) != 1 or isinstance(body.get("n"), bool):
        raise ApiError(400, "'n' must be 1: this server returns one choice per request.", param="n")


def save_data_url(url: str, folder: Path, limit: int) -> Path:
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


async def save_upload(upload, folder: Path, limit: int) -> Path:
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
