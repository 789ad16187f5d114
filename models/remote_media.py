"""Speech, embeddings, pictures and vision on a remote OpenAI-compatible endpoint.

The same move as remote text (models/remote.py), for the other families:
vLLM or a faster-whisper server for ``/v1/audio/transcriptions``, TEI,
vLLM or Infinity for ``/v1/embeddings``, LocalAI (or a second instance of
this app) for ``/v1/images/generations``, and a vision-language model
behind ``/v1/chat/completions`` with ``image_url`` parts. Each adapter
checks the reply's shape itself: a server that answers 200 with something
else is marked unhealthy with the reason, rather than handing on garbage.
"""

from __future__ import annotations

import base64
import mimetypes
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from models.base import BadInput, Request, Result, Usage
from models.remote import OpenAIChat, RemoteAdapter

# Inputs per /v1/embeddings call: TEI's default max_client_batch_size is 32.
EMBED_BATCH = 32


class OpenAIEmbedder(RemoteAdapter):
    family = "embed"
    tasks = ("rag",)
    what = "embedding list"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tokens = 0  # prompt tokens the server reported, for count_tokens

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            batch = list(texts[start : start + EMBED_BATCH])
            with self.errors():
                reply = self.client.embeddings.create(model=self.model, input=batch)
                got = [list(map(float, d.embedding)) for d in reply.data]
            if len(got) != len(batch) or len({len(v) for v in got}) != 1 or not got[0]:
                raise self.wrong_shape(f"{len(got)} vectors for {len(batch)} texts")
            usage = getattr(reply, "usage", None)
            self.tokens = getattr(usage, "prompt_tokens", 0) or sum(len(t) // 4 for t in batch)
            vectors.extend(got)
        return vectors

    def count_tokens(self, texts: Sequence[str]) -> int:
        """What the last embed() call was charged, as the server counted it."""
        return self.tokens

    def run(self, request: Request) -> Result:
        text = request.text.strip()
        if not text:
            raise BadInput("Give some text to embed.")
        vector = self.embed([text])[0]
        return Result(usage=Usage(self.tokens, len(vector), "tokens"))


class OpenAITranscriber(RemoteAdapter):
    family = "asr"
    tasks = ("asr",)
    what = "transcription"

    def __init__(self, *args, recordings: frozenset[str] = frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        # The suffixes it is sent (the catalog passes the app's one table of
        # kinds); empty: every attachment is tried, and the endpoint judges.
        self.recordings = recordings

    def stream(
        self, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[str | Result]:
        from models.asr import recordings_in, timecode

        clips = recordings_in(request.attachments, self.recordings)
        if not clips:
            raise BadInput("Attach a recording to transcribe.")
        with self.errors(), open(clips[0], "rb") as audio:
            # verbose_json brings segments, language and duration where the server has
            # them; servers that only know "json" still send the text.
            reply = self.client.audio.transcriptions.create(
                model=self.model, file=audio, response_format="verbose_json"
            )
        text = getattr(reply, "text", None)
        if not isinstance(text, str):
            raise self.wrong_shape("no 'text'")
        segments = tuple(_segment(s) for s in getattr(reply, "segments", None) or ())
        for seg in segments:
            yield f"[{timecode(seg['start'])}–{timecode(seg['end'])}] {seg['text']}\n"
        seconds = float(getattr(reply, "duration", 0) or (segments[-1]["end"] if segments else 0))
        yield Result(
            text=text.strip(),
            segments=segments,
            usage=Usage(round(seconds, 2), len(text.split()), "audio_seconds"),
            language=getattr(reply, "language", None),
        )


def _segment(seg: Any) -> dict:
    get = seg.get if isinstance(seg, dict) else lambda k: getattr(seg, k, None)
    return {
        "start": float(get("start") or 0),
        "end": float(get("end") or 0),
        "text": str(get("text") or "").strip(),
    }


class OpenAIImages(RemoteAdapter):
    family = "image"
    tasks = ("image_generation",)
    what = "image generation"

    def __init__(self, *args, out_dir: Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.out_dir = Path(out_dir)  # inside ASSISTANT_HOME, where pictures are served from

    def run(self, request: Request) -> Result:
        options = request.options.given()
        # OpenAI's own fields, plus what diffusion servers (LocalAI, this app) also read.
        extra = {k: options[k] for k in ("steps", "seed") if k in options}
        if "guidance" in options:
            extra["guidance_scale"] = options["guidance"]
        size = None
        if "width" in options and "height" in options:
            size = f"{int(options['width'])}x{int(options['height'])}"
        with self.errors():
            reply = self.client.images.generate(
                model=self.model,
                prompt=request.text,
                n=1,
                response_format="b64_json",
                **({"size": size} if size else {}),
                extra_body=extra or None,
            )
            data = reply.data[0].b64_json
        if not isinstance(data, str):
            raise self.wrong_shape("no b64_json picture")
        try:
            picture = base64.b64decode(data, validate=True)
        except ValueError:
            raise self.wrong_shape("b64_json that is not base64") from None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"remote-{uuid.uuid4().hex[:12]}.png"
        path.write_bytes(picture)
        return Result(files=(path,), usage=Usage(0, 1, "images"))


class OpenAIVision(OpenAIChat):
    """A vision-language model behind chat completions: the pictures go as image_url parts."""

    family = "vision"
    tasks = ("vision",)

    def content(self, request: Request) -> list:
        if not request.attachments:
            raise BadInput("Attach a picture to ask about it.")
        parts: list[dict] = [
            {"type": "text", "text": request.text.strip() or "Describe this picture."}
        ]
        for path in request.attachments:
            kind = mimetypes.guess_type(str(path))[0] or "image/png"
            data = base64.b64encode(Path(path).read_bytes()).decode()
            parts.append({"type": "image_url", "image_url": {"url": f"data:{kind};base64,{data}"}})
        return parts
