"""A per-session budget: smaller models near the cap, a recorded refusal past it."""

from __future__ import annotations

import pytest

from assistant.accounting.costs import Cost
from assistant.accounting.ledger import Finished, Started
from assistant.settings import Settings
from models.base import BadInput, Request


def spend(assistant, session: str, usd: float) -> None:
    """Put an earlier request of ``usd`` into the session's ledger."""
    rid = f"earlier-{usd}"
    assistant.ledger.start(Started(rid, session, "ui", "text", "qwen2.5-1.5b-instruct", "x", 1))
    cost = Cost("cpu", 1.0, 10.0, "estimate", usd, None, None)
    assistant.ledger.finish(Finished(rid, "ok", cost=cost))


@pytest.fixture
def budgeted(assistant):
    # The default text model is the big one, so a downgrade has somewhere to go.
    assistant.settings = assistant.settings.with_(session_budget_usd=0.01)
    assistant.router.preferred = {"text": "qwen2.5-1.5b-instruct"}
    return assistant


def test_far_from_the_cap_the_router_is_left_alone(budgeted):
    spend(budgeted, "s", 0.001)
    outcome = budgeted.ask(Request(text="hi", session_id="s"))
    assert outcome.route.model == "qwen2.5-1.5b-instruct"


def test_near_the_cap_a_smaller_model_is_chosen_and_said(budgeted):
    spend(budgeted, "s", 0.009)
    outcome = budgeted.ask(Request(text="hi", session_id="s"))
    assert outcome.status == "ok" and outcome.route.model == "smollm2-135m-instruct"
    assert "budget 90% used → smaller model" in outcome.route.reason


def test_a_model_the_person_chose_is_not_downgraded(budgeted):
    spend(budgeted, "s", 0.009)
    chosen = budgeted.ask(Request(text="hi", session_id="s", model="qwen2.5-1.5b-instruct"))
    assert chosen.route.model == "qwen2.5-1.5b-instruct"


def test_past_the_cap_the_request_is_refused_and_recorded(budgeted, fake_chat):
    spend(budgeted, "s", 0.02)
    outcome = budgeted.ask(Request(text="hi", session_id="s"))
    assert outcome.status == "refused" and "budget" in outcome.error
    assert "ASSISTANT_SESSION_BUDGET_USD" in outcome.error
    row = budgeted.ledger.get(outcome.request_id)
    assert (row["status"], row["task"], row["reason"]) == (
        "refused",
        "text",
        "refused after routing",
    )
    assert fake_chat.seen == []
    # Another session is not affected.
    assert budgeted.ask(Request(text="hi", session_id="other")).status == "ok"


def test_a_zero_budget_refuses_everything_clearly(assistant):
    assistant.settings = assistant.settings.with_(session_budget_usd=0.0)
    outcome = assistant.ask(Request(text="hi"))
    assert outcome.status == "refused" and "$0 budget" in outcome.error


@pytest.mark.parametrize("raw, ok", [("0", 0.0), ("0.5", 0.5), ("", None)])
def test_budget_settings(raw, ok):
    assert Settings.from_env({"ASSISTANT_SESSION_BUDGET_USD": raw}).session_budget_usd == ok


@pytest.mark.parametrize("raw", ["lots", "-1"])
def test_a_bad_budget_names_the_variable(raw):
    with pytest.raises(BadInput, match="ASSISTANT_SESSION_BUDGET_USD"):
        Settings.from_env({"ASSISTANT_SESSION_BUDGET_USD": raw})
