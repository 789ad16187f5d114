"""Decoding recordings: every bad file gets a clear message, fast (PyAV only, no weights)."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from models.audio import SAMPLE_RATE, decode
from models.base import BadInput

CLIP = Path(__file__).parent / "data" / "speech_en.wav"


def _wav_with(tmp_path: Path, name: str, patch) -> Path:
    data = bytearray(CLIP.read_bytes())
    patch(data)
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def test_good_clip_decodes_to_16k_mono_float32():
    audio = decode(CLIP)
    assert audio.dtype.name == "float32" and audio.ndim == 1
    assert abs(audio.shape[0] / SAMPLE_RATE - 6.88) < 0.05
    assert 0.01 < float(abs(audio).max()) <= 1.0


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "zero": tmp_path / "zero.wav",
        "header_only": tmp_path / "header.wav",
        "random": tmp_path / "random.wav",
        "png": tmp_path / "picture.wav",
    }
    files["zero"].write_bytes(b"")
    files["header_only"].write_bytes(CLIP.read_bytes()[:44])
    files["random"].write_bytes(bytes(range(256)) * 20)
    files["png"].write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)

    def channels(d):
        d[22:24] = struct.pack("<H", 65535)

    def rate(d):
        d[24:28] = struct.pack("<I", 4_000_000_000)

    files["channels"] = _wav_with(tmp_path, "channels.wav", channels)
    files["rate"] = _wav_with(tmp_path, "rate.wav", rate)
    return files


@pytest.mark.parametrize("kind", ["zero", "header_only", "random", "png", "channels", "rate"])
def test_bad_audio_gets_a_clear_message_within_a_second(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    started = time.monotonic()
    with pytest.raises(BadInput) as err:
        decode(path)
    assert time.monotonic() - started < 1.0
    message = str(err.value)
    assert path.name in message  # says which file
    assert "Traceback" not in message


def test_header_claiming_three_hours_decodes_only_what_is_there(tmp_path):
    def three_hours(d):
        claimed = SAMPLE_RATE * 2 * 3 * 3600
        d[4:8] = struct.pack("<I", 36 + claimed)
        d[40:44] = struct.pack("<I", claimed)

    path = _wav_with(tmp_path, "claims_3h.wav", three_hours)
    started = time.monotonic()
    audio = decode(path, max_seconds=60)
    assert time.monotonic() - started < 1.0
    assert audio.shape[0] / SAMPLE_RATE < 7  # the real body, not the claim


def test_recording_over_the_cap_is_refused_naming_the_limit():
    with pytest.raises(BadInput, match="longer than the 5-second limit"):
        decode(CLIP, max_seconds=5)


def test_shell_characters_in_a_file_name_are_only_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "x;touch _pwned;.wav"
    path.write_bytes(CLIP.read_bytes())
    assert decode(path).shape[0] > SAMPLE_RATE
    assert not (tmp_path / "_pwned").exists()


def _encode(samples, path: Path, codec: str, rate: int) -> None:
    """Write ``samples`` (16 kHz mono float32) in another container and codec with PyAV."""
    import av
    import numpy as np

    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        for resampled in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.mark.parametrize(
    "name, codec, rate",
    [
        ("clip.mp3", "libmp3lame", 44100),
        ("clip.ogg", "libopus", 48000),
        ("clip.opus", "libopus", 48000),
        ("clip.m4a", "aac", 44100),
        ("clip.webm", "libopus", 48000),
        ("clip.flac", "flac", 16000),
    ],
)
def test_every_upload_format_decodes_to_the_same_length(tmp_path, name, codec, rate):
    import numpy as np

    original = decode(CLIP)
    path = tmp_path / name
    _encode(original, path, codec, rate)
    audio = decode(path)
    # Codecs pad a few ms; the length and loudness must survive.
    assert abs(audio.shape[0] - original.shape[0]) < 0.1 * SAMPLE_RATE
    assert 0.5 < np.sqrt(np.mean(audio**2)) / np.sqrt(np.mean(original**2)) < 2.0


def test_three_hour_upload_over_the_cap_is_refused_within_seconds(tmp_path):
    import wave

    path = tmp_path / "three_hours.wav"
    with wave.open(str(path), "wb") as w:  # 8 kHz 8-bit: 86 MB of real samples
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        second = b"\x80" * 8000
        w.writeframes(second * 3 * 3600)
    started = time.monotonic()
    with pytest.raises(BadInput, match="30-minute limit"):
        decode(path, max_seconds=1800)
    assert time.monotonic() - started < 10
