"""Speech to text: Whisper, through two backends that read the same weights.

- ``FasterWhisper`` (CTranslate2) is the fast path: int8 on CPU, float16
  on CUDA. Clips up to 30 s (spoken requests) decode greedily and
  sequentially, yielding finely timed segments as they finish. Longer
  recordings are cut at silences by Silero VAD (shipped inside
  faster-whisper) and the pieces decoded in batches with beam 5
  (BatchedInferencePipeline): on the bench's 66 s of speech, 2 cores, that
  is ~6x openai-whisper's own defaults at a WER within 1 point of it, while
  batched greedy lost 1.1 points. The cost: one segment per VAD chunk (up
  to 30 s) rather than per sentence.
- ``OpenAIWhisper`` is the reference the product promises (openai-whisper's
  own decoding). It cannot read CTranslate2 files, so the packed weights are
  converted once (models/whisper_convert.py); with internet, its own size
  names ("base", "large-v3") load as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

from models import audio
from models.base import (
    Adapter,
    BadInput,
    ModelUnavailable,
    Request,
    Result,
    Usage,
    hub_cached,
    keeping_torch_threads,
    pick_device,
    require,
    require_download,
)


def recordings_in(attachments, recordings: Collection[str]) -> list[Path]:
    """The attachments to transcribe: those whose suffix is a recording kind
    (the catalog passes the app's table of kinds), or all when none is given."""
    return [p for p in attachments if not recordings or p.suffix.lower() in recordings]


def timecode(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


class _Whisper(Adapter):
    """What both backends share: finding and decoding the clip, shaping the Result."""

    family = "asr"
    tasks = ("asr",)

    def __init__(
        self,
        source: str | Path,
        device: str = "auto",
        max_seconds: float = 1800.0,
        language: str | None = None,
        prepare: Callable[[], Path] | None = None,
        model: Any = None,
        recordings: Collection[str] = (),
    ):
        self.source = source  # prepared weights, or a size name (needs internet)
        self.device_preference = device
        self.max_seconds = max_seconds
        self.language = language  # None: detect (English-only models always say "en")
        self.prepare = prepare  # makes the weights folder on first load (a pack)
        self.model = model
        # Suffixes to transcribe, from the app's table of file kinds (the
        # catalog passes them; family code knows no router). Empty: any file.
        self.recordings = frozenset(recordings)

    def transcribe(self, samples) -> tuple[Iterator[dict], str]:
        """(segments {start, end, text} as they are decoded, language)."""
        raise NotImplementedError

    def unload(self) -> None:
        self.model = None

    def stream(
        self, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[str | Result]:
        clips = recordings_in(request.attachments, self.recordings)
        if not clips:
            kinds = ", ".join(sorted(self.recordings))
            raise BadInput(f"Attach a recording ({kinds}) to transcribe.")
        samples = audio.decode(clips[0], max_seconds=self.max_seconds)
        seconds = samples.shape[0] / audio.SAMPLE_RATE
        pieces, language = self.transcribe(samples)
        segments = []
        for seg in pieces:
            segments.append(seg)
            yield f"[{timecode(seg['start'])}–{timecode(seg['end'])}] {seg['text']}\n"
            if cancel is not None and cancel.is_set():
                break
        transcript = " ".join(s["text"] for s in segments).strip()
        yield Result(
            text=transcript,
            segments=tuple(segments),
            usage=Usage(round(seconds, 2), len(transcript.split()), "audio_seconds"),
            language=language,
        )


def once_encoded(whisper_model_class: type) -> type:
    """faster-whisper's ``WhisperModel`` that encodes a short clip once, not twice.

    faster-whisper 1.2.1, asked to detect the language, encodes the clip's
    first 30 s in ``detect_language`` and again in ``generate_segments``
    (which takes the first encoding as a parameter, but ``transcribe``
    passes None). The encoder is most of a memo's recognition time:
    ``bench.asr_memos`` times a memo with the language given at 0.51x. This
    subclass keeps the last input and its encoding and hands the encoding
    back for an equal input; its language detection reads the frames the
    decoding reads (a short clip without its last frame, as
    ``generate_segments`` slices it), so the two inputs are equal.
    """
    import numpy as np

    class OnceEncoded(whisper_model_class):
        _last: tuple | None = None  # (input features, their encoding)

        def encode(self, features):
            last = self._last
            if last is not None and last[0].shape == features.shape:
                if np.array_equal(last[0], features):
                    return last[1]
            encoded = super().encode(features)
            self._last = (features, encoded)  # one assignment: safe beside another thread
            return encoded

        def detect_language(self, audio=None, features=None, **options):
            if (
                features is not None
                and features.shape[-1] - 1 < self.feature_extractor.nb_max_frames
            ):
                features = features[..., :-1]  # generate_segments: content_frames = n - 1
            return super().detect_language(audio=audio, features=features, **options)

    return OnceEncoded


class FasterWhisper(_Whisper):
    def __init__(self, *args, compute_type: str = "auto", cpu_threads: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.compute_type = compute_type  # auto: int8 on CPU, float16 on CUDA
        self.cpu_threads = cpu_threads  # 0: CTranslate2 picks (one per core)

    def load(self) -> None:
        if self.model is not None:
            return
        require("faster_whisper", "faster-whisper")  # before a pack is prepared for nothing
        if self.prepare is not None:
            self.source = self.prepare()
        source = str(self.source)
        require_download(source, "https://huggingface.co", hub_cached(source, "model.bin"))
        from faster_whisper import WhisperModel

        WhisperModel = once_encoded(WhisperModel)  # noqa: N806 (a class)
        self.device = "cuda" if pick_device(self.device_preference) == "cuda" else "cpu"
        compute = self.compute_type
        if compute == "auto":
            compute = "float16" if self.device == "cuda" else "int8"
        try:
            with keeping_torch_threads():
                self.model = WhisperModel(
                    str(self.source),
                    device=self.device,
                    compute_type=compute,
                    cpu_threads=self.cpu_threads,
                )
        except (OSError, RuntimeError, ValueError) as err:
            raise ModelUnavailable(
                f"Could not load Whisper model '{self.source}': {err}. A size name such as "
                "'base' needs internet access to the Hugging Face hub."
            ) from err

    def transcribe(self, samples):
        if samples.shape[0] > 30 * audio.SAMPLE_RATE:
            from faster_whisper import BatchedInferencePipeline

            # Timestamps inside chunks cost accuracy in batched mode (WER 9.4%
            # vs 5.6% on the bench speech), so chunks keep their VAD bounds.
            pieces, info = BatchedInferencePipeline(self.model).transcribe(
                samples, language=self.language, beam_size=5, batch_size=8
            )
        else:
            pieces, info = self.model.transcribe(
                samples, language=self.language, beam_size=1, condition_on_previous_text=False
            )
        segments = (
            {"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text.strip()}
            for s in pieces  # a generator: decoding happens as it is iterated
        )
        return segments, info.language


class OpenAIWhisper(_Whisper):
    def load(self) -> None:
        if self.model is not None:
            return
        require(
            "whisper",
            "openai-whisper",
            "pip install --no-deps -r requirements-packs.txt (it pins openai-whisper)",
        )
        if self.prepare is not None:
            self.source = self.prepare() / "model.pt"
        source = str(self.source)
        cache = Path.home() / ".cache" / "whisper" / f"{source}.pt"  # openai-whisper's own cache
        require_download(source, "https://openaipublic.azureedge.net", cache.exists())
        import whisper

        self.device = "cuda" if pick_device(self.device_preference) == "cuda" else "cpu"
        try:
            self.model = whisper.load_model(str(self.source), device=self.device)
        except (OSError, RuntimeError) as err:
            raise ModelUnavailable(
                f"Could not load openai-whisper model '{self.source}': {err}. Size names "
                "such as 'base' download from OpenAI's servers and need internet access."
            ) from err

    def transcribe(self, samples):
        # Greedy at temperature 0 without conditioning on earlier text: the
        # same decoding as the fast path, so the two are compared fairly.
        out = self.model.transcribe(
            samples,
            language=self.language,
            temperature=0.0,
            fp16=self.device == "cuda",
            condition_on_previous_text=False,
            verbose=None,
        )
        segments = [
            {"start": round(s["start"], 2), "end": round(s["end"], 2), "text": s["text"].strip()}
            for s in out["segments"]
        ]
        return iter(segments), out.get("language") or self.language or "en"


def convert_ct2_pack(joined: Path, out_dir: Path) -> None:
    """Pack converter: a CTranslate2 model.bin (+ side files in out_dir) -> out_dir/model.pt."""
    from models.whisper_convert import ct2_to_whisper

    ct2 = out_dir / "ct2"
    ct2.mkdir()
    # Absolute targets: a relative one would resolve against ct2/, not the cwd.
    (ct2 / "model.bin").symlink_to(joined.resolve())
    for side in ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json"):
        if (out_dir / side).exists():
            (ct2 / side).symlink_to((out_dir / side).resolve())
    ct2_to_whisper(ct2, out_dir / "model.pt")
    for link in ct2.iterdir():
        link.unlink()
    ct2.rmdir()
