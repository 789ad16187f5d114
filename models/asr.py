"""Speech to text: Whisper through faster-whisper (CTranslate2), the fast path.

int8 on CPU (CTranslate2's quantised GEMMs are ~4x openai-whisper's fp32
there), float16 on CUDA. Segments are yielded as they finish so long
recordings show progress; Silero VAD (shipped inside faster-whisper) skips
silence, which is most of what makes long recordings slow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from models import audio
from models.base import Adapter, BadInput, ModelUnavailable, Request, Result, Usage, pick_device


def timecode(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


class FasterWhisper(Adapter):
    family = "asr"
    tasks = ("asr",)

    def __init__(
        self,
        source: str | Path,
        device: str = "auto",
        compute_type: str = "auto",
        cpu_threads: int = 0,
        max_seconds: float = 1800.0,
        language: str | None = None,
        prepare: Callable[[], Path] | None = None,
        model: Any = None,
    ):
        self.source = source  # a CTranslate2 folder, or a size name ("base") with internet
        self.device_preference = device
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads  # 0: CTranslate2 picks (one per core)
        self.max_seconds = max_seconds
        self.language = language  # None: detect (English-only models always say "en")
        self.prepare = prepare
        self.model = model

    def load(self) -> None:
        if self.model is not None:
            return
        if self.prepare is not None:
            self.source = self.prepare()
        from faster_whisper import WhisperModel

        self.device = "cuda" if pick_device(self.device_preference) == "cuda" else "cpu"
        compute = self.compute_type
        if compute == "auto":
            compute = "float16" if self.device == "cuda" else "int8"
        try:
            self.model = WhisperModel(
                str(self.source), device=self.device, compute_type=compute,
                cpu_threads=self.cpu_threads,
            )  # fmt: skip
        except (OSError, RuntimeError, ValueError) as err:
            raise ModelUnavailable(
                f"Could not load Whisper model '{self.source}': {err}. A size name such as "
                "'base' needs internet access to the Hugging Face hub."
            ) from err

    def unload(self) -> None:
        self.model = None

    def stream(
        self, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[str | Result]:
        clips = [p for p in request.attachments if p.suffix.lower() in AUDIO_SUFFIXES]
        if not clips:
            raise BadInput("Attach a recording (wav, mp3, ogg, m4a, webm or flac) to transcribe.")
        samples = audio.decode(clips[0], max_seconds=self.max_seconds)
        seconds = samples.shape[0] / audio.SAMPLE_RATE
        pieces, info = self.model.transcribe(
            samples, language=self.language, beam_size=1, vad_filter=seconds > 30,
            condition_on_previous_text=False,
        )  # fmt: skip
        segments = []
        for seg in pieces:  # a generator: decoding happens as we iterate
            text = seg.text.strip()
            segments.append({"start": round(seg.start, 2), "end": round(seg.end, 2), "text": text})
            yield f"[{timecode(seg.start)}–{timecode(seg.end)}] {text}\n"
            if cancel is not None and cancel.is_set():
                break
        transcript = " ".join(s["text"] for s in segments).strip()
        words = len(transcript.split())
        yield Result(
            text=transcript,
            segments=tuple(segments),
            usage=Usage(round(seconds, 2), words, "audio_seconds"),
            language=info.language,
        )

    def run(self, request: Request) -> Result:
        return [item for item in self.stream(request) if isinstance(item, Result)][-1]


AUDIO_SUFFIXES = {".wav", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".flac", ".aac", ".mp4"}
