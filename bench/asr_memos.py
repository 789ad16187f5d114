"""Which recogniser and decoding hear `bench answers`' voice memos right, side by side.

    python -m bench.asr_memos [--voices] [--json]

The memos of voice_own + voice_heldout are read by espeak-ng exactly as
bench/answers_inputs._memo reads them (the bench's inputs), plus the bench's
66 s of natural speech (speech_en.flac). For each contender: word error rate
against what was said, memos misheard (``heard_right`` fails: no reply can
address them), and seconds per memo. ``--voices`` adds espeak-ng at another
voice and speed: a robustness check only, never the bench's inputs.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.answers_inputs import _load, _memo, heard_right
from bench.measure import BENCHDATA, wer

# name: (prepared weights folder under <home>/weights, faster-whisper decode options).
# "product" is what models/asr.py runs today for a clip under 30 s. "compute_type"
# and "once_encoded" are taken out of the options: how the weights load (int8 when
# absent) and whether the model is models/asr.once_encoded's (the product's).
GREEDY = {"beam_size": 1, "condition_on_previous_text": False}
LOADING = {"compute_type", "once_encoded"}  # how the model loads, not decode options
CONTENDERS = {
    "base greedy (product)": ("whisper-base-ct2", {**GREEDY, "once_encoded": True}),
    "base greedy, faster-whisper as shipped": ("whisper-base-ct2", GREEDY),
    "base greedy, language en": ("whisper-base-ct2", {**GREEDY, "language": "en"}),
    "base beam 5 + temperature fallback": (
        "whisper-base-ct2",
        {"beam_size": 5, "condition_on_previous_text": False},  # fallback is the default
    ),
    "base greedy, vad_filter": ("whisper-base-ct2", {**GREEDY, "vad_filter": True}),
    "base greedy, condition_on_previous_text": (
        "whisper-base-ct2",
        {**GREEDY, "condition_on_previous_text": True},
    ),
    "base float32 greedy": ("whisper-base-ct2", {**GREEDY, "compute_type": "float32"}),
    "base float32 beam 5": (
        "whisper-base-ct2",
        {"beam_size": 5, "condition_on_previous_text": False, "compute_type": "float32"},
    ),
    # A generic context for the decoder (no memo's words): tried, it heard fewer memos.
    "base greedy, prompt 'A voice note.'": (
        "whisper-base-ct2",
        {**GREEDY, "initial_prompt": "A voice note."},
    ),
    "base greedy, prompt everyday": (
        "whisper-base-ct2",
        {
            **GREEDY,
            "initial_prompt": "A short voice message about everyday things: "
            "errands, food, people, plans.",
        },
    ),
    "tiny.en greedy": ("whisper-tiny.en-ct2", GREEDY),
    "tiny.en beam 5": (
        "whisper-tiny.en-ct2",
        {"beam_size": 5, "condition_on_previous_text": False},
    ),
}
# Another espeak-ng voice and speed (robustness only): (label, extra espeak-ng flags).
VOICES = [("en-us, 140 wpm", ["-v", "en-us", "-s", "140"]), ("en+f3", ["-v", "en+f3"])]


def _spoken(texts: list[str], folder: Path, flags: list[str]) -> list[Path]:
    return [
        _memo(t, folder / f"memo{i}.wav", espeak_flags=tuple(flags)) for i, t in enumerate(texts)
    ]


def _run(model, options: dict, clips: list[Path]) -> tuple[list[str], list[float]]:
    from models import audio

    texts, seconds = [], []
    for clip in clips:
        samples = audio.decode(clip)
        started = time.perf_counter()
        pieces, _info = model.transcribe(samples, **options)
        texts.append(" ".join(p.text.strip() for p in pieces))
        seconds.append(time.perf_counter() - started)
    return texts, seconds


def measure(voices: bool, progress=print) -> dict:
    from faster_whisper import WhisperModel

    from assistant.settings import Settings
    from models.asr import once_encoded

    weights = Settings.from_env().home / "weights"
    said = [c["text"] for c in _load("voice_own.jsonl") + _load("voice_heldout.jsonl")]
    speech = (BENCHDATA / "speech_en.txt").read_text()
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"bench memos": _spoken(said, Path(tmp), [])}
        if voices:
            for label, flags in VOICES:
                (Path(tmp) / label).mkdir()
                sets[label] = _spoken(said, Path(tmp) / label, flags)
        models, results = {}, {}
        for name, (folder, options) in CONTENDERS.items():
            options = dict(options)
            key = (folder, options.pop("compute_type", "int8"), options.pop("once_encoded", False))
            if key not in models:
                kind = once_encoded(WhisperModel) if key[2] else WhisperModel
                models[key] = kind(str(weights / folder), "cpu", compute_type=key[1])
            row = {}
            for label, clips in sets.items():
                heard, secs = _run(models[key], options, clips)
                row[label] = {
                    "wer": round(100 * wer(" ".join(said), " ".join(heard)), 1),
                    "misheard": [
                        s for s, h in zip(said, heard, strict=True) if not heard_right(s, h)
                    ],
                    "heard": heard,
                    "s_per_memo": round(statistics.median(secs), 2),
                }
            text, secs = _run(models[key], options, [BENCHDATA / "speech_en.flac"])
            row["speech_en.flac"] = {"wer": round(100 * wer(speech, text[0]), 1), "s": secs[0]}
            results[name] = row
            progress(f"{name}: " + _line(row))
    return results


def _line(row: dict) -> str:
    parts = [
        f"{label}: WER {r['wer']}%, misheard {len(r['misheard'])}, {r['s_per_memo']} s/memo"
        for label, r in row.items()
        if "misheard" in r
    ]
    flac = row["speech_en.flac"]
    return "; ".join(parts) + f"; speech_en.flac WER {flac['wer']}% in {flac['s']:.1f} s"


if __name__ == "__main__":
    out = measure("--voices" in sys.argv)
    if "--json" in sys.argv:
        print(json.dumps(out, indent=1))
