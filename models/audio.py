"""Decoding uploaded and recorded audio to 16 kHz mono float32, safely.

PyAV (FFmpeg's libraries inside a wheel) decodes wav, mp3, ogg/opus, m4a,
webm and flac in-process, so no system ffmpeg is needed and no shell ever
sees a file name. Headers are not trusted: the length limit is enforced on
the samples actually decoded, and a wall-clock limit stops a file that
decodes pathologically slowly.
"""

from __future__ import annotations

import time
from pathlib import Path

from models.base import BadInput

SAMPLE_RATE = 16_000


def decode(
    path: Path,
    max_seconds: float = 1800.0,
    time_limit_s: float = 60.0,
    sample_rate: int = SAMPLE_RATE,
):
    """The file's first audio stream as a float32 numpy array at ``sample_rate``, mono."""
    import av
    import numpy as np

    name = Path(path).name
    try:
        size = Path(path).stat().st_size
    except OSError:
        raise BadInput(f"The audio file {name} could not be read.") from None
    if size == 0:
        raise BadInput(f"The audio file {name} is empty (0 bytes). Record or upload it again.")

    max_samples = int(max_seconds * sample_rate)
    chunks: list = []
    total = 0
    started = time.monotonic()
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise BadInput(f"{name} has no audio in it. Upload a sound recording.")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.shape[0]
                if total > max_samples:
                    raise BadInput(
                        f"{name} is longer than the {_minutes(max_seconds)} limit. "
                        "Split it, or raise ASSISTANT_MAX_AUDIO_SECONDS."
                    )
                if time.monotonic() - started > time_limit_s:
                    raise BadInput(f"{name} took too long to decode; it may be damaged.")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except BadInput:
        raise
    except (av.error.FFmpegError, ValueError, OverflowError, MemoryError, IndexError) as err:
        raise BadInput(
            f"{name} is not audio that can be decoded ({type(err).__name__}). "
            "Upload wav, mp3, ogg/opus, m4a, webm or flac."
        ) from None
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if audio.shape[0] < sample_rate // 10:
        raise BadInput(f"{name} holds no sound (under 0.1 s of audio). Record it again.")
    return audio.astype(np.float32, copy=False)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}-minute" if seconds >= 60 else f"{seconds:g}-second"
