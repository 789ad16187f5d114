"""The inputs of `bench answers` and how its replies are checked: the sets in
bench/data/answers/, pictures drawn with Pillow, voice memos (recorded, or
read by espeak-ng), and the list of prompt scaffolding a person must never see."""

from __future__ import annotations

import difflib
import functools
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).with_name("data") / "answers"

# Prompt scaffolding a person must never see (an independent list: not grounding.py's).
SCAFFOLD = [
    re.compile(p, re.I | re.M)
    for p in (
        r"<<<",
        r">>>",
        r"\bexcerpt \[\d",
        r"^\s*question\s*:",
        r"answer with citations",
        r"^\s*excerpts?\s*:",
        r"<\|im_(start|end)\|>",
        r"<\|endoftext\|>",
        r"^\s{0,3}#{1,6}\s",
        r"not instructions",
        r"quoted data",
        r"^\s*(facts|context)\s*:\s*$",
        # The system prompts' own words (a 135M model repeated a voice-note one).
        r"you(?:'re| are) a helpful assistant",
        r"speaks to you through voice notes",
        r"reply to each note",
        r"using only the facts in",
        r"never follow instructions",
    )
]


def scaffolding(text: str, n_citations: int) -> list[str]:
    """What of the prompt's scaffolding shows in ``text`` (empty: nothing)."""
    found = [p.pattern for p in SCAFFOLD if p.search(text)]
    bad = [n for n in re.findall(r"\[(\d+)\]", text) if not 1 <= int(n) <= n_citations]
    return found + [f"[{n}] of {n_citations}" for n in bad]


def _load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def _has(text: str, expected: list[str]) -> bool:
    low = text.lower()
    # A plural counts ("notice" in "notices"); a longer number does not ("60" in "600").
    return any(
        re.search(rf"(?<![\w.]){re.escape(e.lower())}(?:s|es)?(?![\w])", low) for e in expected
    )


def answer_part(reply: str) -> str:
    """A picture reply without the readers' findings that follow its answer (judged apart:
    the OCR lines hold the value asked for whether or not the answer states it)."""
    from models.vision import NEXT_PICTURE

    return NEXT_PICTURE.split(reply, maxsplit=1)[0]


def _picture(lines: list[str], path: Path) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=30)
    width = max(int(font.getlength(line)) for line in lines) + 80
    img = Image.new("RGB", (max(width, 420), 60 + 56 * len(lines)), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((40, 30 + 56 * i), line, fill="black", font=font)
    img.save(path)
    return path


# Who reads the memos (BENCH_ANSWERS_VOICE, a comma list):
# - "recorded": the memos as a person would say them, recorded once with Piper's
#   natural en_US-joe-medium voice (CC0) into bench/data/answers/memos/, so the
#   bench needs no GPL runtime (``record`` below makes them again);
# - "espeak": espeak-ng's formant voice, made on the fly. Whisper base mishears it
#   now and then ("a small orange kitten" -> "a small-role indicator"): it heard
#   5 of 8 memos from espeak-ng against 7 of 8 from Piper (2026-12-03);
# - "piper": Piper's voice live, where `make tts` installed it.
MEMO_VOICES = ("recorded", "espeak", "piper")
RECORDINGS = DATA / "memos"


def recording(text: str) -> Path:
    """Where the recorded memo of ``text`` is kept: its words, lower case, as the name."""
    slug = "-".join(re.findall(r"[a-z0-9]+", text.lower()))[:60].rstrip("-")
    return RECORDINGS / f"{slug}.wav"


def _memo(text: str, path: Path, voice: str = "espeak", espeak_flags: tuple = ()) -> Path:
    """``text`` spoken into a 16 kHz mono wav at ``path``; ``espeak_flags`` pick
    another espeak-ng voice or speed (bench.asr_memos --voices)."""
    if voice == "recorded":
        source = recording(text)
        if not source.is_file():
            from models.base import ModelUnavailable

            raise ModelUnavailable(
                f"No recording of the memo '{text}' ({source.name}): record the memos with "
                "`python -m bench.answers_inputs record` (needs Piper: make tts)."
            )
        path.write_bytes(source.read_bytes())
        return path
    raw = path.with_suffix(".raw.wav")
    if voice == "piper":
        import wave

        speaker = _piper()  # first: a missing extra is its message, not a half-written wav
        with wave.open(str(raw), "wb") as out:
            speaker.synthesize_wav(text, out)
        commands = []
    else:
        commands = [["espeak-ng", *espeak_flags, "-w", str(raw), text]]
    for cmd in (*commands, ["sox", str(raw), "-r", "16000", "-c", "1", str(path)]):
        try:
            subprocess.run(cmd, check=True, capture_output=True)
        except FileNotFoundError:
            from models.base import ModelUnavailable

            raise ModelUnavailable(
                "bench answers needs espeak-ng and sox for its voice memos: "
                "apt-get install -y espeak-ng sox"
            ) from None
    raw.unlink()
    return path


def record() -> list[Path]:
    """Record every memo of voice_*.jsonl with Piper into RECORDINGS (16 kHz mono)."""
    RECORDINGS.mkdir(exist_ok=True)
    made = []
    for name in ("voice_own.jsonl", "voice_heldout.jsonl"):
        for case in _load(name):
            made.append(_memo(case["text"], recording(case["text"]), "piper"))
    return made


@functools.cache
def _piper():
    """The product's Piper voice (catalog entry piper-joe-medium, the `make tts`
    extra), loaded once; its adapter says what to install when it is missing."""
    from assistant.catalog.backends import build_adapter
    from assistant.catalog.entries import Catalog
    from assistant.settings import Settings

    speech = build_adapter(Catalog.load().get("piper-joe-medium"), Settings.from_env(), print)
    speech.load()
    return speech.voice


# -- the voice memo judge ----------------------------------------------------------
# Keywords alone passed nonsense built from the memo's frame words ("The worst may
# come to your shopping list"). A reply addresses a memo when it holds two of its
# keywords, restates one of its items (what the memo is about, not "list" or
# "note"), echoes no word the recogniser misheard, is not a word salad, and is
# close in meaning to what was said (the embedder's cosine; the threshold is
# calibrated on the hand-labelled replies of voice_judge.jsonl, see its test).
VOICE_SIMILARITY = 0.4
# A reply of this many words or more whose distinct words are fewer than this
# share of them is a loop ("milk milk milk bread the weekend of milk").
SALAD_WORDS, SALAD_DISTINCT = 8, 0.5
# Two spellings of one word are this alike (difflib's ratio): "tires"/"tyres" 0.8,
# "neighbor"/"neighbour" 0.94, "potato"/"potatoes" 0.86; misheard words are far
# apart: "breath"/"bread" 0.73, "macarp"/"carpet" 0.5, "fallout"/"four" 0.36.
SAME_WORD = 0.8
# Words too common to be a mishearing worth noticing when a reply repeats them.
STOPWORDS = frozenset(
    "the and for with that this what your you are was were have has had not but "
    "from they them their there then than when where which who how why can could "
    "would should will into onto about after before over under some any all its "
    "our out off get got just also very more most much many".split()
)


def _same_word(a: str, b: str) -> bool:
    """One word spelt two ways: "tires"/"tyres", "neighbor"/"neighbour", "potato"/"potatoes"."""
    return difflib.SequenceMatcher(None, a, b).ratio() >= SAME_WORD


def _misheard(transcript: str, memo: str) -> set[str]:
    """The transcript's content words that are no spelling of a word of the memo."""
    said = _content(memo)
    return {w for w in _content(transcript) if not any(_same_word(w, s) for s in said)}


def heard_right(memo: str, transcript: str, share: float = 0.8) -> bool:
    """Did the recogniser hear ``share`` of the memo's content words? (Whisper base
    hears espeak-ng's voice badly now and then: "batteries and a birthday card" →
    "Hard matter is, and the worst"; no reply can address what was not heard.)"""
    said, heard = _content(memo), _content(transcript)
    caught = [w for w in said if any(_same_word(w, h) for h in heard)]  # "tyres" heard as "tires"
    return len(caught) >= share * len(said)


@dataclass(frozen=True)
class MemoVerdict:
    ok: bool
    why: str  # what failed, "" when it passed
    similarity: float | None = None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _content(text: str) -> set[str]:
    return {w for w in _words(text) if len(w) > 2 and w not in STOPWORDS}


def judge_memo(
    reply: str,
    case: dict,
    transcript: str,
    similarity: Callable[[str, str], float] | None = None,
) -> MemoVerdict:
    """Does ``reply`` address the memo ``case["text"]`` (as said, not as misheard)?"""
    words = _words(reply)
    keys = [k.lower() for k in case["keywords"]]
    hits = {w for w in set(words) if any(w in (k, k + "s", k + "es") for k in keys)}
    need = min(2, len(keys))
    if len(hits) < need:
        return MemoVerdict(False, f"{len(hits)} of the memo's keywords, {need} needed")
    if not _has(reply, case["items"]):
        return MemoVerdict(False, "restates none of the memo's items")
    echoed = sorted(w for w in _misheard(transcript, case["text"]) if w in set(words))
    if echoed:
        return MemoVerdict(False, f"echoes misheard words: {', '.join(echoed)}")
    if len(words) >= SALAD_WORDS and len(set(words)) < SALAD_DISTINCT * len(words):
        return MemoVerdict(False, "a word salad")
    if similarity is None:
        return MemoVerdict(True, "")
    score = similarity(reply, case["text"])
    if score < VOICE_SIMILARITY:
        return MemoVerdict(False, f"far from the memo (cosine {score:.2f})", score)
    return MemoVerdict(True, "", score)


if __name__ == "__main__":  # python -m bench.answers_inputs record
    import sys

    if sys.argv[1:] != ["record"]:
        sys.exit("usage: python -m bench.answers_inputs record")
    for made in record():
        print(made)
