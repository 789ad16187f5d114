"""Datasets, metrics and ratings of the evaluation package, against hand-computed values."""

from __future__ import annotations

import json
import math

import pytest

from assistant.evaluation import datasets, metrics, rating
from assistant.evaluation.rating import Vote
from models.base import BadInput, Request


def _write(path, lines):
    path.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines))
    return path


def test_a_jsonl_dataset_loads_with_attachments_resolved_beside_it(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.wav").write_bytes(b"RIFF")
    path = _write(
        tmp_path / "d.jsonl",
        [
            {"id": "q1", "input": "capital of France?", "expected": "Paris"},
            "",
            {"id": 2, "input": "", "attachments": ["clips/a.wav"], "expected": ["hello", "hi"]},
        ],
    )
    first, second = datasets.load(path)
    assert first.expected == ("Paris",) and first.attachments == ()
    assert second.id == "2" and second.expected == ("hello", "hi")
    assert second.attachments == ((tmp_path / "clips" / "a.wav").resolve(),)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{not json", "line 2: not JSON"),
        ('["a list"]', "line 2: a line must be a JSON object"),
        ('{"id": "x", "input": "q", "colour": "red"}', "line 2: unknown field"),
        ('{"input": "q"}', "line 2: 'id' is missing"),
        ('{"id": "a", "input": "again"}', "line 2: id 'a' was already used on line 1"),
        ('{"id": "x", "input": ""}', "line 2: neither 'input' nor 'attachments'"),
        ('{"id": "x", "input": "q", "expected": 3}', "line 2: 'expected' must be"),
        ('{"id": "x", "input": "q", "attachments": ["../secret.txt"]}', "outside the dataset"),
        ('{"id": "x", "input": "q", "attachments": ["/etc/passwd"]}', "outside the dataset"),
        ('{"id": "x", "input": "q", "attachments": ["nope.wav"]}', "does not exist"),
    ],
)
def test_a_malformed_line_is_refused_with_its_number_before_anything_runs(tmp_path, bad, message):
    (tmp_path / "secret.txt").write_text("s")
    folder = tmp_path / "set"
    folder.mkdir()
    path = _write(folder / "d.jsonl", [{"id": "a", "input": "q"}, bad])
    with pytest.raises(BadInput, match=message):
        datasets.load(path)


def test_a_csv_dataset_takes_the_same_columns_with_bars_between_values(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('id,input,expected\nq1,"Say hi, please",hi|hello\n')
    (example,) = datasets.load(path)
    assert example.input == "Say hi, please" and example.expected == ("hi", "hello")
    (tmp_path / "bad.csv").write_text("question,answer\nq,a\n")
    with pytest.raises(BadInput, match="line 1: the header lacks id, input"):
        datasets.load(tmp_path / "bad.csv")


def test_empty_missing_and_foreign_files_are_refused(tmp_path):
    (tmp_path / "e.jsonl").write_text("\n\n")
    with pytest.raises(BadInput, match="holds no examples"):
        datasets.load(tmp_path / "e.jsonl")
    with pytest.raises(BadInput, match="No dataset"):
        datasets.load(tmp_path / "none.jsonl")
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(BadInput, match=".jsonl or .csv"):
        datasets.load(tmp_path / "d.txt")


def test_contains_and_exact_ignore_case_and_spacing_but_not_words():
    assert metrics.contains("The capital is  PARIS.", ("paris",)) == 1.0
    assert metrics.contains("The capital is Lyon.", ("paris", "Île-de-France")) == 0.0
    assert metrics.exact(" Paris. ", ("paris",)) == 1.0
    assert metrics.exact("Paris, France", ("paris",)) == 0.0
    assert metrics.contains("anything", ("",)) == 0.0  # an empty expectation proves nothing
    # Whole words: wrong answers seen in real runs must not score.
    assert metrics.contains("Water freezes at 0.98 degrees.", ("0",)) == 0.0
    assert metrics.contains("It freezes at 0 degrees, or 32 F.", ("0",)) == 1.0
    assert metrics.contains("A Parisian café.", ("Paris",)) == 0.0


def test_wer_counts_substitutions_deletions_and_insertions_per_reference_word():
    # Reference 6 words; "sat"->"sit" (S), "the" dropped (D), "today" added (I): 3/6.
    assert metrics.wer("the cat sit on mat today", ("The cat sat on the mat.",)) == 0.5
    assert metrics.wer("The cat sat on the mat", ("the cat sat on the mat",)) == 0.0
    assert metrics.wer("", ("two words",)) == 1.0
    # The best of several references counts.
    assert metrics.wer("hello there", ("hi", "hello there")) == 0.0
    assert metrics.edit_distance(list("kitten"), list("sitting")) == 3
    # Whisper's digits and a reference's words are the same words (a real transcript).
    assert (
        metrics.wer(
            "The next train leaves from platform 4.", ("The next train leaves from platform four.",)
        )
        == 0.0
    )
    assert metrics.wer("at 10", ("at ten",)) == 0.0 and metrics.wer("at 100", ("at ten",)) == 0.5


def test_json_metric_needs_an_object_with_every_expected_key():
    assert metrics.json_keys('{"name": "a", "age": 3}', ("name", "age")) == 1.0
    assert metrics.json_keys('```json\n{"name": "a"}\n```', ("name",)) == 1.0
    assert metrics.json_keys('{"name": "a"}', ("name", "age")) == 0.0
    assert metrics.json_keys('Sure! {"name": "a"}', ("name",)) == 0.0
    assert metrics.json_keys("[1, 2]", ()) == 0.0
    with pytest.raises(BadInput, match="Unknown metric 'bleu'"):
        metrics.metric("bleu")
    assert not metrics.metric("wer").higher_is_better


def test_bradley_terry_two_models_matches_the_closed_form():
    # A beats B 3 times of 4: p_A / (p_A + p_B) = 3/4, so the log-strength gap is ln 3.
    votes = [Vote("A", "B", "a")] * 3 + [Vote("A", "B", "b")]
    s = rating.strengths(votes, prior=0.0)
    assert s["A"] - s["B"] == pytest.approx(math.log(3), abs=1e-6)
    assert s["A"] + s["B"] == pytest.approx(0.0, abs=1e-9)


def test_bradley_terry_three_models_satisfies_the_likelihood_equations():
    votes = (
        [Vote("A", "B", "a")] * 2
        + [Vote("A", "B", "b")]
        + [Vote("B", "C", "a")] * 3
        + [Vote("C", "B", "a")]
        + [Vote("A", "C", "tie")] * 2
    )
    s = rating.strengths(votes, iterations=2000, prior=0.0)
    p = {m: math.exp(v) for m, v in s.items()}
    # At the maximum, each model's wins equal its expected wins: sum_j n_ij p_i / (p_i + p_j).
    wins = {"A": 2 + 1.0, "B": 1 + 3, "C": 1 + 1.0}
    games = {("A", "B"): 3, ("B", "C"): 4, ("A", "C"): 2}
    for m in p:
        expected = sum(
            n * p[m] / (p[m] + p[y if m == x else x]) for (x, y), n in games.items() if m in (x, y)
        )
        assert expected == pytest.approx(wins[m], rel=1e-6)


def test_ratings_rank_best_first_with_an_interval_that_holds_the_score():
    votes = [Vote("big", "small", "a")] * 8 + [Vote("big", "small", "b")] * 2
    votes += [Vote("small", "big", "both_bad")]
    ranked = rating.ratings(votes, rounds=100)
    assert [r.model for r in ranked] == ["big", "small"]
    for r in ranked:
        assert r.low <= r.score <= r.high and r.votes == 11
    # An unbeaten model stays finite (the prior), and the same seed gives the same interval.
    unbeaten = rating.ratings([Vote("x", "y", "a")] * 5, rounds=50)
    assert all(math.isfinite(r.score) for r in unbeaten)
    assert unbeaten == rating.ratings([Vote("x", "y", "a")] * 5, rounds=50)
    assert rating.ratings([]) == []


def test_the_pareto_front_keeps_only_models_no_other_beats_on_score_and_cost():
    points = [
        ("cheap-bad", 0.4, 1.0),
        ("mid", 0.7, 2.0),
        ("dear-good", 0.9, 5.0),
        ("dominated", 0.6, 3.0),
        ("twin-of-mid", 0.7, 2.0),
    ]
    assert rating.pareto(points) == {"cheap-bad", "mid", "dear-good", "twin-of-mid"}
    # For an error rate, lower is better.
    assert rating.pareto([("a", 0.1, 2.0), ("b", 0.3, 2.0)], higher_is_better=False) == {"a"}


# --- the engine, through the real flow with a fake chat model -----------------------------


def _dataset(tmp_path):
    return _write(
        tmp_path / "capitals.jsonl",
        [
            {"id": "fr", "input": "Capital of France?", "expected": "Paris"},
            {"id": "de", "input": "Capital of Germany?", "expected": ["Berlin"]},
        ],
    )


def test_eval_scores_each_model_through_the_ledger_and_resumes(assistant, fake_chat, tmp_path):
    from assistant.evaluation.engine import evaluate

    fake_chat.replies = ["It is Paris.", "Probably Paris too."]
    path = _dataset(tmp_path)
    seen = []
    report = evaluate(
        assistant,
        path,
        ["smollm2-135m-instruct"],
        None,
        lambda done, total, item: seen.append((done, total)),
    )
    assert report["metric"] == "contains" and report["task"] == "text"
    (summary,) = report["models"]
    assert summary["score"] == 0.5 and summary["n"] == 2 and summary["failed"] == 0
    assert [i["score"] for i in report["items"]] == [1.0, 0.0]
    assert seen == [(1, 2), (2, 2)]
    rows = assistant.ledger.rows(limit=10)
    assert len(rows) == 2 and {r["source"] for r in rows} == {"eval"}
    # Run again: every item is read back from the run file, no model runs.
    again = evaluate(assistant, path, ["smollm2-135m-instruct"])
    assert again["items"] == report["items"] and len(fake_chat.seen) == 2


def test_an_interrupted_eval_keeps_the_items_done_and_runs_only_the_rest(
    assistant, fake_chat, tmp_path
):
    from assistant.evaluation.engine import evaluate

    path = _dataset(tmp_path)

    def interrupt(done, total, item):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate(assistant, path, ["smollm2-135m-instruct"], None, interrupt)
    assert len(fake_chat.seen) == 1
    report = evaluate(assistant, path, ["smollm2-135m-instruct"])
    assert len(fake_chat.seen) == 2 and len(report["items"]) == 2


def test_eval_refuses_models_that_cannot_serve_the_task_naming_those_that_can(assistant, tmp_path):
    from assistant.evaluation.engine import evaluate

    with pytest.raises(BadInput, match="asks for text, which whisper-base cannot.*smollm2"):
        evaluate(assistant, _dataset(tmp_path), ["smollm2-135m-instruct", "whisper-base"])
    with pytest.raises(BadInput, match="Unknown model 'nope'"):
        evaluate(assistant, _dataset(tmp_path), ["nope"])
    with pytest.raises(BadInput, match="named twice"):
        evaluate(assistant, _dataset(tmp_path), ["smollm2-135m-instruct"] * 2)


def test_a_failed_item_counts_as_wrong_and_says_why(settings, tmp_path):
    from assistant.evaluation.engine import evaluate
    from tests.conftest import FakeChat, make_assistant

    broken = make_assistant(settings, FakeChat(fail=RuntimeError("out of memory")))
    report = evaluate(broken, _dataset(tmp_path), ["smollm2-135m-instruct"])
    assert report["models"][0]["score"] == 0.0 and report["models"][0]["failed"] == 2
    assert all(i["status"] == "error" and i["score"] is None for i in report["items"])


def test_eval_cli_prints_the_contract(tmp_path, monkeypatch, capsys):
    from assistant.__main__ import main

    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    bad = _write(tmp_path / "bad.jsonl", [{"id": "x"}])
    assert main(["eval", str(bad), "--models", "smollm2-135m-instruct", "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "error" and "line 1" in out["error"]


# --- compare, votes and the leaderboard -----------------------------------------------------

PAIR = ["smollm2-135m-instruct", "smollm2-135m-instruct-fp32"]


def test_compare_streams_every_column_and_reports_them_in_the_order_asked(assistant, fake_chat):
    from assistant.evaluation.compare import Column, Piece, compare, stream

    fake_chat.replies = ["Paris is the capital."]
    events = list(stream(assistant, "Capital of France?", PAIR))
    pieces = [e for e in events if isinstance(e, Piece)]
    finished = [e for e in events if isinstance(e, Column)]
    assert {p.column for p in pieces} == {0, 1} and len(finished) == 2
    for column in finished:
        # Every piece of a column comes before that column's end.
        assert max(
            i
            for i, e in enumerate(events)
            if getattr(e, "column", -1) == column.column and isinstance(e, Piece)
        ) < events.index(column)
    report = compare(assistant, "Capital of France?", list(reversed(PAIR)))
    assert [c["model"] for c in report["columns"]] == list(reversed(PAIR))
    for column in report["columns"]:
        assert column["status"] == "ok" and column["output"] == "Paris is the capital."
        assert column["task"] == "text" and column["cost"]["usd_local"] >= 0
        assert column["timings"]["first_s"] <= column["timings"]["total_s"]
        assert column["speed"].endswith("tokens/s")
    sources = [r["source"] for r in assistant.ledger.rows(limit=10)]
    assert sources == ["compare"] * 4


def test_compare_refuses_too_few_too_many_twice_named_and_mismatched_models(assistant):
    from assistant.evaluation.compare import compare

    with pytest.raises(BadInput, match="2 to 4 models; 1 given"):
        compare(assistant, "hi", PAIR[:1])
    with pytest.raises(BadInput, match="2 to 4 models; 5 given"):
        compare(assistant, "hi", PAIR + ["a", "b", "c"])
    with pytest.raises(BadInput, match="named twice"):
        compare(assistant, "hi", [PAIR[0], PAIR[0]])
    with pytest.raises(BadInput, match="whisper-base cannot"):
        compare(assistant, "hi", [PAIR[0], "whisper-base"])


def test_a_failing_column_is_reported_while_the_other_answers(settings):
    from assistant.evaluation.compare import compare
    from tests.conftest import FakeChat, make_assistant

    class Broken(FakeChat):
        def stream(self, request, cancel=None):
            raise RuntimeError("out of memory")

    good, bad = FakeChat(["Fine."]), Broken()
    assistant = make_assistant(settings, good)
    factory = assistant.pool.factory

    def pick(model_id):
        return bad if model_id == PAIR[1] else factory(model_id)

    assistant.pool.factory = pick
    report = compare(assistant, "hello there, how are you?", PAIR)
    first, second = report["columns"]
    assert first["status"] == "ok" and first["output"] == "Fine."
    assert second["status"] == "error" and "out of memory" in second["error"]


def test_votes_feed_a_leaderboard_that_moves_and_the_cli_round_trip(tmp_path, monkeypatch, capsys):
    from assistant.__main__ import main
    from assistant.accounting.ledger import Ledger
    from assistant.evaluation.votes import Votes, leaderboard

    votes = Votes(tmp_path / "votes.sqlite")
    ledger = Ledger(tmp_path / "ledger.sqlite")
    assert leaderboard(votes, ledger) == []
    votes.record("text", "small", "big", "b")
    top = leaderboard(votes, ledger, "text")
    assert [r["model"] for r in top] == ["big", "small"]
    for _ in range(3):
        votes.record("text", "small", "big", "a")
    assert [r["model"] for r in leaderboard(votes, ledger, "text")] == ["small", "big"]
    with pytest.raises(BadInput, match="one of a, b, tie, both_bad"):
        votes.record("text", "small", "big", "maybe")
    with pytest.raises(BadInput, match="two different models"):
        votes.record("text", "small", "small", "a")

    monkeypatch.setenv("ASSISTANT_HOME", str(tmp_path / "home"))
    assert main(["vote", "nope", "a"]) == 2
    assert "No comparison 'nope'" in capsys.readouterr().err
    assert main(["leaderboard", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_speech_eval_scores_the_transcript_and_runs_no_text_model(settings, tmp_path):
    """transcribe_only stops the chain: the answer to a memo is not its transcript."""
    from assistant.evaluation.engine import evaluate
    from tests.conftest import FakeASR, FakeChat, make_assistant

    chat = FakeChat()
    assistant = make_assistant(settings, chat, {"asr": FakeASR()})
    (tmp_path / "memo.wav").write_bytes(b"RIFF0000WAVE")
    path = _write(
        tmp_path / "speech.jsonl",
        [
            {
                "id": "m",
                "input": "",
                "attachments": ["memo.wav"],
                "expected": "buy milk and two eggs",
            },
        ],
    )
    report = evaluate(assistant, path, ["whisper-base"])
    assert report["task"] == "asr" and report["metric"] == "wer"
    (item,) = report["items"]
    assert item["output"] == "Buy milk and 2 eggs." and item["score"] == 0
    assert chat.seen == []


def test_a_model_chosen_after_an_eval_is_the_default_with_its_reason_and_outlives_restarts(
    assistant, settings, fake_chat
):
    from assistant.evaluation import choices
    from tests.conftest import make_assistant

    summary = {"score": 0.92, "n": 24, "usd_local": 0.00096}
    why = choices.because("facts", "contains", summary)
    assert why == "chosen after your eval 'facts': contains 0.92 at $0.00004 per answer here"
    choices.choose(assistant, "text", "smollm2-135m-instruct-fp32", why)
    route = assistant.router.route(Request(text="Capital of France?"))
    assert route.model == "smollm2-135m-instruct-fp32" and why in route.reason
    # A fresh Assistant on the same home (a restart) reads the choice back.
    again = make_assistant(settings, fake_chat)
    assert again.router.route(Request(text="Capital of France?")).model == route.model
    # A person's pick for one request still wins over the chosen default.
    picked = again.router.route(Request(text="Hi", prefer=(("text", "smollm2-135m-instruct"),)))
    assert picked.model == "smollm2-135m-instruct"
    with pytest.raises(BadInput, match="does not serve text"):
        choices.choose(assistant, "text", "whisper-base", why)


def test_compare_loads_each_model_once_and_matches_the_models_alone(assistant, fake_chat):
    """The deterministic half of `bench compare`: no model is loaded again for a
    comparison, and each column is what that model says alone."""
    from assistant.evaluation.compare import compare

    fake_chat.replies = ["Yellow."]
    alone = [assistant.ask(Request(text="Banana colour?", model=m, task="text")) for m in PAIR]
    leased = {m: _leased(assistant, m) for m in PAIR}
    loads = fake_chat.loads
    report = compare(assistant, "Banana colour?", PAIR)
    assert [c["output"] for c in report["columns"]] == [o.result.text for o in alone]
    assert fake_chat.loads == loads and {m: _leased(assistant, m) for m in PAIR} == leased


def _leased(assistant, model: str) -> int:
    with assistant.pool.lease(model) as lease:
        return id(lease.adapter)
