"""bench text's choice of this machine's default chat runtime: speed, gated by factual answers."""

from bench.text_default import SLACK, Factual, choose, factual_score
from models.base import Result, Usage

CT2, LLAMA = "smollm2-135m-instruct", "smollm2-135m-instruct-llamacpp"


def _f(right: int) -> Factual:
    return Factual(right, 24, ())


def test_the_faster_runtime_wins_when_it_answers_as_well_or_one_worse():
    decode, eight = {CT2: 37.8, LLAMA: 50.1}, {CT2: 130.0, LLAMA: 150.0}
    assert choose(decode, eight, {CT2: _f(18), LLAMA: _f(18)}) == LLAMA
    assert choose(decode, eight, {CT2: _f(18), LLAMA: _f(18 - SLACK)}) == LLAMA


def test_the_faster_runtime_loses_when_it_answers_worse_by_more_than_the_slack():
    decode, eight = {CT2: 37.8, LLAMA: 50.1}, {CT2: 130.0, LLAMA: 150.0}
    assert choose(decode, eight, {CT2: _f(18), LLAMA: _f(18 - SLACK - 1)}) == CT2
    # and the gate cuts both ways: a faster CTranslate2 that answers worse loses too
    assert choose({CT2: 60.0, LLAMA: 50.1}, eight, {CT2: _f(10), LLAMA: _f(18)}) == LLAMA


def test_llama_cpp_must_win_one_chat_and_eight_to_be_the_faster():
    factual = {CT2: _f(18), LLAMA: _f(18)}
    assert choose({CT2: 37.8, LLAMA: 50.1}, {CT2: 150.0, LLAMA: 130.0}, factual) == CT2
    assert choose({CT2: 55.0, LLAMA: 50.1}, {CT2: 130.0, LLAMA: 150.0}, factual) == CT2
    assert choose({CT2: 37.8}, {CT2: 130.0}, {CT2: _f(3)}) == CT2  # no llama.cpp here


class _Echo:
    """A model that answers 'Paris.' to everything, and records what it was asked."""

    def __init__(self):
        self.requests = []

    def stream(self, request, cancel=None):
        self.requests.append(request)
        yield "Paris"
        yield Result(text="Paris. Tokyo is the capital of Japan.", usage=Usage(1, 2, "tokens"))


def test_factual_score_judges_the_first_sentence_of_primed_greedy_replies():
    from assistant.flow.primed import EXAMPLES

    model = _Echo()
    score = factual_score(model)
    assert score.total == 24 and len(model.requests) == 24
    assert score.right == 1  # only "capital of France": Tokyo is in the second sentence
    assert len(score.missed) == 23 and any("Japan" in m for m in score.missed)
    assert all(r.history == EXAMPLES and r.temperature == 0 for r in model.requests)
