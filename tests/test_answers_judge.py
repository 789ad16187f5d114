"""The judges of `bench answers`: a voice memo's reply must address what was said."""

from __future__ import annotations

import pytest

from bench.answers import CHAINS, _chains
from bench.answers_inputs import VOICE_SIMILARITY, _load, heard_right, judge_memo

SHOPPING = {
    "text": "Add batteries and a birthday card to my shopping list.",
    "keywords": ["batteries", "battery", "birthday", "card", "shopping", "list"],
    "items": ["batteries", "battery", "birthday card", "card"],
}
HEARD = "Hard matter is, and the worst may come to my shopping list."


def test_a_reply_of_the_memos_frame_words_alone_fails():
    # The nonsense the keyword-only judge passed: "shopping" and "list", no item.
    nonsense = "The worst they can't do my shopping list is to make sure everything is accurate."
    verdict = judge_memo(nonsense, SHOPPING, SHOPPING["text"])
    assert not verdict.ok and "items" in verdict.why


def test_a_reply_that_restates_an_item_passes():
    verdict = judge_memo("Added batteries and a birthday card to your list.", SHOPPING, HEARD)
    assert verdict.ok, verdict.why


def test_a_reply_that_echoes_what_was_misheard_fails():
    reply = "The worst may come to your shopping list, so buy batteries."
    verdict = judge_memo(reply, SHOPPING, HEARD)
    assert not verdict.ok and "worst" in verdict.why


def test_another_spelling_of_a_word_said_is_not_a_mishearing():
    # Whisper writes American spelling and plurals its own way: "tyres" heard as
    # "tires" is heard right, and a reply that says "tires" addresses the memo.
    tyres = {
        "text": "Note that the car needs new tyres before winter.",
        "keywords": ["car", "tyres", "tires", "winter"],
        "items": ["tyres", "tires"],
    }
    heard = "Note that the car needs new tires before winter."
    assert judge_memo("Remember: your car needs new tires before winter.", tyres, heard).ok
    verdict = judge_memo("The car needs new tires and a fallout.", tyres, heard + " Fallout.")
    assert not verdict.ok and "fallout" in verdict.why


def test_a_word_salad_of_memo_words_fails():
    reply = "Batteries batteries card card the list the list the list batteries."
    verdict = judge_memo(reply, SHOPPING, SHOPPING["text"])
    assert not verdict.ok and "salad" in verdict.why


def test_a_reply_far_in_meaning_from_the_memo_fails():
    reply = "Batteries and cards are sold in most shops."
    far = judge_memo(reply, SHOPPING, SHOPPING["text"], lambda r, m: VOICE_SIMILARITY - 0.1)
    near = judge_memo(reply, SHOPPING, SHOPPING["text"], lambda r, m: VOICE_SIMILARITY + 0.1)
    assert not far.ok and "cosine" in far.why
    assert near.ok and near.similarity == pytest.approx(VOICE_SIMILARITY + 0.1)


def test_the_hand_labelled_replies_are_judged_by_rule_as_labelled_where_rules_can_tell():
    # Without the embedder: every good reply passes the rules; the rules alone
    # already fail most bad ones (the embedder's share is the real-tier test's).
    cases = {c["text"]: c for s in ("own", "heldout") for c in _load(f"voice_{s}.jsonl")}
    labelled = _load("voice_judge.jsonl")
    verdicts = [(r, judge_memo(r["reply"], cases[r["memo"]], r["transcript"])) for r in labelled]
    assert all(v.ok for r, v in verdicts if r["good"]), [r["reply"] for r, v in verdicts]
    bad = [v for r, v in verdicts if not r["good"]]
    assert sum(not v.ok for v in bad) >= len(bad) - 1


def test_bench_chains_can_be_picked_and_a_wrong_name_is_refused():
    assert _chains("") == list(CHAINS)
    assert _chains("voice, followups") == ["voice", "followups"]
    with pytest.raises(ValueError, match="known"):
        _chains("voices")


def test_the_memo_voices_can_be_picked_and_a_wrong_name_is_refused():
    from bench.answers import _voice_names

    assert _voice_names("") == ("recorded", "espeak")
    assert _voice_names(" piper ") == ("piper",)
    with pytest.raises(ValueError, match="known: recorded, espeak, piper"):
        _voice_names("recorded,joe")


def test_every_memo_has_its_recording_and_a_missing_one_says_how_to_make_it(tmp_path):
    """The bench's natural-voice memos ship in the repo: one 16 kHz mono wav per memo."""
    import wave

    from bench.answers_inputs import _load, _memo, recording
    from models.base import ModelUnavailable

    texts = [c["text"] for n in ("voice_own.jsonl", "voice_heldout.jsonl") for c in _load(n)]
    for text in texts:
        with wave.open(str(recording(text))) as w:
            assert (w.getframerate(), w.getnchannels()) == (16000, 1), text
            assert 1.0 < w.getnframes() / 16000 < 10.0, text  # a spoken sentence, not silence
    with pytest.raises(ModelUnavailable, match="python -m bench.answers_inputs record"):
        _memo("A memo nobody recorded.", tmp_path / "m.wav", "recorded")


def test_a_memo_is_heard_right_when_most_of_its_words_are_in_the_transcript():
    assert heard_right(SHOPPING["text"], "Add batteries and a birthday card to my list.")
    assert not heard_right(SHOPPING["text"], HEARD)
    # A spelling Whisper chose is still the word said.
    assert heard_right("Check the tyres before the trip.", "Check the tires before the trip.")


def test_only_the_voice_memo_score_itself_is_judged_against_the_goal():
    from bench.answers_metrics import _goal

    assert _goal("voice memo: the reply addresses it (own)")[0] == ">= 0.8"
    assert _goal("voice memo: of those Whisper heard, the reply addresses it (own)") == (None, None)
    # The robotic voice is printed beside the goal, not judged by it.
    robotic = "voice memo, robotic voice (espeak-ng): the reply addresses it (own)"
    assert _goal(robotic) == (None, None)
