"""Speech recognition: the product's faster-whisper against openai-whisper, like for like.

    python -m assistant bench asr [--json] [--repeats N]

Each contender runs in its own subprocess, one after the other, so peak
memory is the contender's own and one cannot warm the other's caches.
Then short clips (spoken requests and memos are under 30 s): the product's
recogniser against faster-whisper as shipped, which encodes a clip twice
when it detects the language (models/asr.once_encoded), timed interleaved
on 10 s slices of the same speech.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

from assistant.settings import Settings
from bench.measure import BENCHDATA, metric, wer

# name: (catalog id, decoding). "default" is exactly what the product runs;
# "greedy" and "beam5" are like-for-like settings on both libraries, "beam5"
# being each library's own default (openai-whisper's CLI, faster-whisper's API).
ASR_CONTENDERS = {
    "openai-whisper fp32, beam 5 (reference)": ("whisper-base-openai", "beam5"),
    "openai-whisper fp32, greedy": ("whisper-base-openai", "greedy"),
    "faster-whisper int8, beam 5": ("whisper-base", "beam5"),
    "faster-whisper int8, greedy sequential": ("whisper-base", "greedy"),
    "faster-whisper int8, product default": ("whisper-base", "default"),
}
REFERENCE = "openai-whisper fp32, beam 5 (reference)"
DEFAULT = "faster-whisper int8, product default"


def _decoder(adapter, mode: str):
    """A function samples -> (segments with "text", language) for one contender."""
    if mode == "default":
        return adapter.transcribe
    from models.asr import OpenAIWhisper

    is_openai = isinstance(adapter, OpenAIWhisper)
    if is_openai and mode == "greedy":
        return adapter.transcribe  # the reference adapter decodes greedily

    def decode(samples):
        if is_openai:  # beam5: openai-whisper's CLI defaults
            out = adapter.model.transcribe(
                samples, language="en", fp16=False, beam_size=5, best_of=5, verbose=None
            )
            return out["segments"], "en"
        beam = 5 if mode == "beam5" else 1
        pieces, info = adapter.model.transcribe(
            samples, language="en", beam_size=beam, condition_on_previous_text=mode == "beam5"
        )
        return ({"text": p.text} for p in pieces), info.language

    return decode


def _asr_worker(model_id: str, mode: str, repeats: int) -> dict:
    """Runs in a subprocess: load once (timed), transcribe ``repeats`` times."""
    import torch

    torch.set_num_threads(2)
    from assistant.catalog.backends import build_adapter, prepare_weights
    from assistant.catalog.entries import Catalog
    from models import audio

    settings = Settings.from_env()
    entry = Catalog.load().get(model_id)
    prepare_weights(entry, settings, progress=lambda m: None)  # not part of the cold load
    adapter = build_adapter(entry, settings, progress=lambda m: None)
    if hasattr(adapter, "cpu_threads"):
        adapter.cpu_threads = 2
    started = time.perf_counter()
    adapter.load()
    load_s = time.perf_counter() - started
    samples = audio.decode(BENCHDATA / "speech_en.flac")
    transcribe = _decoder(adapter, mode)
    runs, text = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        segments, _language = transcribe(samples)
        text = " ".join(s["text"].strip() for s in segments)
        runs.append(time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "load_s": load_s,
        "runs": runs,
        "text": text,
        "peak_mb": peak_mb,
        "audio_s": samples.shape[0] / audio.SAMPLE_RATE,
    }


CLIP_S = 10  # the short clips' length: a spoken request or memo


def _short_clips_worker(repeats: int) -> dict:
    """Runs in a subprocess: whisper base as the product loads it and as shipped,
    interleaved clip by clip (either order in turn), greedy, language detected."""
    from faster_whisper import WhisperModel

    from assistant.catalog.backends import prepare_weights
    from assistant.catalog.entries import Catalog
    from models import audio
    from models.asr import once_encoded

    settings = Settings.from_env()
    folder = prepare_weights(Catalog.load().get("whisper-base"), settings, progress=lambda m: None)
    contenders = {
        "product": once_encoded(WhisperModel)(str(folder), "cpu", compute_type="int8"),
        "shipped": WhisperModel(str(folder), "cpu", compute_type="int8"),
    }
    samples = audio.decode(BENCHDATA / "speech_en.flac")
    step = CLIP_S * audio.SAMPLE_RATE
    clips = [samples[i : i + step] for i in range(0, samples.shape[0] - step + 1, step)]
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    texts: dict[str, list[str]] = {name: [] for name in contenders}
    for turn in range(repeats):
        for i, clip in enumerate(clips):
            order = list(contenders) if (turn + i) % 2 == 0 else list(contenders)[::-1]
            for name in order:
                started = time.perf_counter()
                pieces, _info = contenders[name].transcribe(
                    clip, beam_size=1, condition_on_previous_text=False
                )
                text = " ".join(p.text.strip() for p in pieces)
                seconds[name].append(time.perf_counter() - started)
                if turn == 0:
                    texts[name].append(text)
    return {
        "clips": len(clips),
        "median_s": {name: statistics.median(s) for name, s in seconds.items()},
        "same_words": texts["product"] == texts["shipped"],
    }


def _short_clips(repeats: int) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.asr", "_short_clips_worker", str(repeats)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"short clips failed:\n{out.stderr[-2000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    product, shipped = r["median_s"]["product"], r["median_s"]["shipped"]
    what = f"{r['clips']} clips of {CLIP_S} s, language detected"
    return [
        metric(f"short clips ({what}): product, per clip (median)", product, "s"),
        metric(f"short clips ({what}): faster-whisper as shipped (median)", shipped, "s"),
        metric("short clips: product vs as shipped, time", product / shipped, "x"),
        metric("short clips: the same words from both", float(r["same_words"]), "bool"),
    ]


def bench_asr(repeats: int, progress) -> list[dict]:
    reference_text = (BENCHDATA / "speech_en.txt").read_text()
    results = {}
    for name, (model_id, mode) in ASR_CONTENDERS.items():
        progress(f"  {name}: {model_id}, {repeats} runs...")
        out = subprocess.run(
            [sys.executable, "-m", "bench.asr", "_asr_worker", model_id, mode, str(repeats)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{out.stderr[-2000:]}")
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])

    metrics, rtf, wers = [], {}, {}
    for name, r in results.items():
        rtf[name] = statistics.median(r["runs"]) / r["audio_s"]
        wers[name] = wer(reference_text, r["text"]) * 100
        metrics += [
            metric(f"{name}: real-time factor (median)", rtf[name], "x audio length"),
            metric(f"{name}: word error rate", wers[name], "%"),
            metric(f"{name}: cold load", r["load_s"], "s"),
            metric(f"{name}: peak memory", r["peak_mb"], "MB"),
        ]

    def speedup(slow: str, fast: str) -> float:
        return rtf[slow] / rtf[fast]

    goal = speedup(REFERENCE, DEFAULT)
    metrics += [
        metric("product default vs reference: speed-up", goal, "x", ">= 3", goal >= 3),
        metric(
            "like for like, beam 5: faster-whisper vs openai-whisper",
            speedup(REFERENCE, "faster-whisper int8, beam 5"),
            "x",
        ),
        metric(
            "like for like, greedy: faster-whisper vs openai-whisper",
            speedup("openai-whisper fp32, greedy", "faster-whisper int8, greedy sequential"),
            "x",
        ),
    ]
    gap = wers[DEFAULT] - wers[REFERENCE]
    metrics.append(
        metric("product default WER minus reference WER", gap, "points", "<= 1", gap <= 1)
    )
    audio_s = results[REFERENCE]["audio_s"]
    metrics.append(metric("speech benchmarked", audio_s, "s", ">= 60", audio_s >= 60))
    progress(f"  short clips: product vs faster-whisper as shipped, {repeats} rounds...")
    return metrics + _short_clips(repeats)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "_asr_worker":
    print(json.dumps(_asr_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "_short_clips_worker":
    print(json.dumps(_short_clips_worker(int(sys.argv[2]))))
