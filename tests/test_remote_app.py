"""This app as the endpoint of another: each remote family against a served instance's /v1.

The served app (tests/security/served.py) has fake models for every family,
so what is checked is the wire between the remote adapters
(models/remote_media.py) and this app's own OpenAI-compatible routes.
Vision is not among them: this app's chat route takes a picture only with
model "auto" (a vision model named there is refused as not a text model),
and answers it through its reader chain; the vision adapter's wire is
checked against the stub in tests/test_remote_media.py.
"""

from __future__ import annotations

import wave

import pytest

from models.base import Adapter, Request, Result, Usage
from models.remote import health
from models.remote_media import OpenAIEmbedder, OpenAIImages, OpenAITranscriber
from tests.openai_stub import PNG
from tests.security.served import serve


class FakeHearing(Adapter):
    family, tasks = "asr", ("asr",)

    def load(self) -> None:
        pass

    def run(self, request):
        segments = ({"start": 0.0, "end": 1.0, "text": "one second of silence"},)
        return Result(
            text="one second of silence",
            segments=segments,
            usage=Usage(1.0, 4, "audio_seconds"),
            language="en",
        )


class FakePainter(Adapter):
    family, tasks = "image", ("image_generation",)

    def __init__(self, outputs):
        self.outputs = outputs

    def load(self) -> None:
        pass

    def run(self, request):
        self.outputs.mkdir(parents=True, exist_ok=True)
        path = self.outputs / "painted.png"
        path.write_bytes(PNG)
        return Result(files=(path,), usage=Usage(0, 1, "images"))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from assistant.settings import Settings

    settings = Settings(home=tmp_path_factory.mktemp("endpoint") / "home")
    fakes = {
        "asr": FakeHearing(),
        "image": FakePainter(settings.home / "outputs"),
    }
    with serve(settings, fakes=fakes) as app:
        yield app


def _loaded(adapter):
    adapter.load()
    return adapter


def test_speech_embeddings_and_pictures_on_this_apps_own_v1(served, tmp_path):
    url = served.url + "/v1"
    clip = tmp_path / "a.wav"
    with wave.open(str(clip), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\0\0" * 16000)

    heard = list(_loaded(OpenAITranscriber(url, "whisper-1")).stream(Request(attachments=(clip,))))
    assert heard[-1].text == "one second of silence" and heard[-1].language == "en"
    assert heard[-1].usage.units_in == 1.0  # the served duration, in audio seconds

    vectors = _loaded(OpenAIEmbedder(url, "text-embedding-3-small")).embed(["a", "b c"])
    assert len(vectors) == 2 and len(vectors[0]) == 64  # the served fake embedder's size

    painted = _loaded(OpenAIImages(url, "dall-e-3", out_dir=tmp_path / "out"))
    [path] = painted.run(Request(text="a red circle on a blue background")).files
    assert path.read_bytes() == PNG

    assert health(url).ok
