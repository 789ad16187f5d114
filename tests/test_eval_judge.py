"""The judge metric (with a fake judge) and two eval runs side by side."""

import json

import pytest

from assistant.evaluation import runs
from assistant.evaluation.judge import SELF, Judge, parse_score
from models.base import BadInput


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("Score: 5", 1.0),
        ("Score: 1", 0.0),
        ("**Score:** 4", 0.75),
        ("score = 3/5", 0.5),
        ("Rating: 8 out of 10", pytest.approx(7 / 9, abs=1e-4)),
        ('{"score": 2, "why": "half right"}', 0.25),
        ("I would give it 4/5 because it names Paris.", 0.75),
        ("3", 0.5),
        ("The answer is right.\n\nScore: 5\n", 1.0),
    ],
)
def test_the_judges_grade_is_read_however_it_is_written(reply, score):
    assert parse_score(reply) == score


@pytest.mark.parametrize(
    "reply",
    ["", "The answer is good.", "Score: 7", "Score: 0", "between 2 and 4", "Score: 6/5"],
)
def test_a_reply_without_a_grade_on_the_scale_gives_no_score(reply):
    assert parse_score(reply) is None


def test_the_judge_sees_question_reference_and_answer_and_never_grades_its_own_weights():
    asked = []
    judge = Judge("qwen2.5-coder-0.5b-instruct", lambda p: asked.append(p) or "Score: 4")
    verdict = judge.grade("Capital of France?", "Paris.", ("Paris",), "smollm2-135m-instruct")
    assert verdict.score == 0.75 and verdict.note == "judge: Score: 4"
    (prompt,) = asked
    assert "Capital of France?" in prompt and "Reference answer: Paris" in prompt
    assert "Answer to grade: Paris." in prompt
    # Its own answers, and the same weights on another runtime: not asked at all.
    for own in ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct-llamacpp"):
        assert judge.grade("q", "a", ("a",), own).score is None
    assert len(asked) == 1 and judge.grade("q", "a", ("a",), judge.model).note == SELF


def _dataset(tmp_path):
    path = tmp_path / "capitals.jsonl"
    lines = [
        {"id": "fr", "input": "Capital of France?", "expected": "Paris"},
        {"id": "de", "input": "Capital of Germany?", "expected": ["Berlin"]},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


SMOL = "smollm2-135m-instruct"
FP32 = "smollm2-135m-instruct-fp32"
QWEN = "qwen2.5-coder-0.5b-instruct"


def test_a_judged_eval_is_labelled_a_judge_and_leaves_self_judged_items_out(
    assistant, fake_chat, tmp_path
):
    from assistant.evaluation.engine import evaluate

    fake_chat.replies = ["Paris.", "Bonn."]
    grades = iter(["Score: 5", "Score: 2"])
    judge = Judge(SMOL, lambda prompt: next(grades))
    report = evaluate(assistant, _dataset(tmp_path), [QWEN, SMOL], "judge", judge=judge)
    assert report["metric"] == "judge" and report["judge"]["model"] == SMOL
    assert "not a measurement" in report["judge"]["bias"]
    qwen, smol = report["models"]
    assert qwen["score"] == pytest.approx((1.0 + 0.25) / 2) and qwen["unscored"] == 0
    # The judge's own answers are not graded: no score, and no part of any mean.
    assert smol["score"] is None and smol["unscored"] == 2 and smol["failed"] == 0
    notes = [i["note"] for i in report["items"]]
    assert notes == ["judge: Score: 5", "judge: Score: 2", SELF, SELF]


def test_the_judge_metric_needs_a_text_judge(assistant, tmp_path):
    from assistant.evaluation.engine import evaluate

    with pytest.raises(BadInput, match="needs a judge model"):
        evaluate(assistant, _dataset(tmp_path), [SMOL], "judge")
    with pytest.raises(BadInput, match="judge must be a text model"):
        evaluate(assistant, _dataset(tmp_path), [SMOL], "judge", judge="whisper-base")


def test_a_catalog_judge_asks_its_model_through_the_ledger(assistant, fake_chat, tmp_path):
    from assistant.evaluation.engine import evaluate

    # The fake text model answers the question, then grades (as the judge) in turn.
    fake_chat.replies = ["Paris.", "Score: 5", "Berlin.", "Score: 4"]
    report = evaluate(assistant, _dataset(tmp_path), [SMOL], "judge", judge=QWEN)
    assert [i["score"] for i in report["items"]] == [1.0, 0.75]
    judged = [r for r in fake_chat.seen if r.model == QWEN]
    assert len(judged) == 2 and "Answer to grade: Paris." in judged[0].text
    assert {r["source"] for r in assistant.ledger.rows(limit=10)} == {"eval"}


def test_two_runs_side_by_side_show_which_items_changed_and_by_how_much(
    assistant, fake_chat, tmp_path
):
    from assistant.evaluation.engine import evaluate

    path = _dataset(tmp_path)
    fake_chat.replies = ["Paris.", "Bonn."]
    before = evaluate(assistant, path, [SMOL])
    fake_chat.replies = ["Paris!", "Berlin."]
    after = evaluate(assistant, path, [FP32])  # another model, the same dataset
    assert [r["run"] for r in runs.saved(assistant.settings.home)] == [after["run"], before["run"]]
    diff = runs.side_by_side(
        runs.load(assistant.settings.home, before["run"]),
        runs.load(assistant.settings.home, after["run"]),
    )
    (pair,) = diff["models"]
    assert (pair["a"], pair["b"], pair["score_a"], pair["score_b"], pair["delta"]) == (
        SMOL,
        FP32,
        0.5,
        1.0,
        0.5,
    )
    fr, de = diff["items"]
    assert (fr["id"], fr["changed"], fr["output_changed"], fr["delta"]) == ("fr", False, True, 0.0)
    assert (de["id"], de["changed"], de["delta"], de["output_b"]) == ("de", True, 1.0, "Berlin.")
    assert diff["changed"] == 1


def test_runs_scored_differently_or_unknown_are_refused(assistant, fake_chat, tmp_path):
    from assistant.evaluation.engine import evaluate

    path = _dataset(tmp_path)
    a = evaluate(assistant, path, [SMOL])
    b = evaluate(assistant, path, [SMOL], "exact")
    with pytest.raises(BadInput, match="scored the same way"):
        runs.side_by_side(a, b)
    with pytest.raises(BadInput, match="No finished eval run 'nope'"):
        runs.load(assistant.settings.home, "nope")
    with pytest.raises(BadInput, match="No finished eval run"):
        runs.load(assistant.settings.home, "../../etc/passwd")


def test_the_runs_view_lists_changed_items_first_with_both_outputs(assistant, fake_chat, tmp_path):
    from assistant.evaluation.engine import evaluate
    from assistant.web.ui.evalruns import diff_view, run_choices

    path = _dataset(tmp_path)
    fake_chat.replies = ["Paris.", "Bonn."]
    a = evaluate(assistant, path, [SMOL])
    fake_chat.replies = ["Lyon.", "Bonn."]
    b = evaluate(assistant, path, [SMOL], "contains")  # the same key: a resumed run
    assert b["run"] == a["run"]
    fake_chat.replies = ["Lyon.", "Bonn."]
    b = evaluate(assistant, path, [FP32])
    assert [value for _, value in run_choices(assistant)] == [b["run"], a["run"]]
    summary, frame = diff_view(runs.side_by_side(a, b))
    assert "**1 of 2** items changed" in summary and "0.50 → 0.00 (Δ -0.50)" in summary
    first = frame.iloc[0]
    assert (first["id"], first["changed"], first["A said"], first["B said"]) == (
        "fr",
        "yes",
        "Paris.",
        "Lyon.",
    )
    assert frame.iloc[1]["changed"] == ""  # the same words, the same score


def test_model_cards_join_the_catalog_with_what_was_measured_here(assistant, fake_chat, tmp_path):
    from assistant.evaluation.cards import cards, quality_line, speed_line
    from assistant.evaluation.engine import evaluate
    from assistant.evaluation.votes import Votes
    from assistant.web.ui.cards import cards_markdown

    fake_chat.replies = ["Paris.", "Bonn."]
    evaluate(assistant, _dataset(tmp_path), [SMOL, FP32])
    votes = Votes(assistant.settings.home / "votes.sqlite")
    votes.record("text", SMOL, FP32, "a")
    found = cards(assistant.catalog, assistant.settings, assistant.ledger, votes)
    by_id = {c["id"]: c for c in found}
    smol, gpt, tiny = by_id[SMOL], by_id["gpt-4o-mini"], by_id["whisper-tiny.en"]
    assert smol["open"] and not gpt["open"] and gpt["cloud_prices"]
    assert smol["languages"] == "English" and tiny["languages"] == "English only"
    assert by_id["whisper-base"]["languages"].startswith("multilingual")
    assert smol["what"].startswith("a chat model") and smol["context_window"]
    # Measured: bench answers' figure, the vote, the eval run, and the ledger's medians.
    assert smol["quality"]["answers"]["grounded"] > 0
    assert smol["quality"]["leaderboard"][0]["rank"] == 1
    assert smol["quality"]["evals"][0]["score"] == 0.5
    assert smol["measured"]["text"]["requests"] == 2
    assert "grounded" in quality_line(smol) and "contains 0.50 on capitals.jsonl" in quality_line(
        smol
    )
    assert "median of 2" in speed_line(smol)
    assert quality_line(tiny) == "not measured yet" and speed_line(tiny) == "no requests yet"
    shown = {block.split("**")[1]: block for block in cards_markdown(assistant).split("---")}
    assert "open (Apache-2.0)" in shown[SMOL] and "median of 2" in shown[SMOL]
    assert "proprietary (" in shown["gpt-4o-mini"] and "can run now" in shown[SMOL]


def test_models_json_prints_the_cards(tmp_path, monkeypatch, capsys):
    from assistant.__main__ import main

    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    assert main(["models", "--json"]) == 0
    cards = {c["id"]: c for c in json.loads(capsys.readouterr().out)}
    smol = cards[SMOL]
    assert smol["license"] == "Apache-2.0" and smol["languages"] == "English"
    assert smol["quality"]["answers"]["grounded"] > 0 and smol["measured"] == {}


def test_eval_against_an_earlier_run_prints_what_changed(tmp_path, monkeypatch, capsys):
    from assistant.__main__ import main
    from assistant.settings import Settings
    from tests.conftest import FakeChat, make_assistant

    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    chat = FakeChat(["Paris.", "Bonn."])
    made = make_assistant(Settings.from_env(), chat)
    monkeypatch.setattr("assistant.flow.service.Assistant.from_settings", lambda *a, **k: made)
    path = _dataset(tmp_path)
    assert main(["eval", str(path), "--models", SMOL, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["run"]
    chat.replies = ["Paris.", "Berlin."]
    assert main(["eval", str(path), "--models", FP32, "--against", first, "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)["against"]
    assert diff["changed"] == 1 and diff["models"][0]["delta"] == 0.5
    assert main(["eval", str(path), "--models", FP32, "--against", first]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 items changed" in out and "de" in out and "B: Berlin." in out
    assert main(["eval", str(path), "--models", FP32, "--against", "nope"]) == 2
