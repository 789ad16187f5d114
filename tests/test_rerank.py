"""Optional reranking of retrieved passages (ASSISTANT_RERANKER): a step of its own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from assistant.flow.service import Assistant
from models.base import Adapter, BadInput, Request
from models.rerank import CrossEncoderReranker
from tests.conftest import make_assistant, seeded

VOLCANO = (
    "Volcanoes erupt when magma rises through the crust. Rhyolite magma is viscous "
    "and erupts explosively."
)
GARDEN = "Magma is not a garden word: tomatoes need full sun and deep watering."
QUESTION = "Why does rhyolite magma erupt explosively?"


class FakeReranker(Adapter):
    """Puts the passages about gardens first: the opposite of what retrieval does here."""

    family = "rerank"
    tasks = ("rerank",)

    def __init__(self):
        self.calls = []

    def load(self) -> None:
        pass

    def scores(self, query, passages):
        self.calls.append((query, list(passages)))
        return [1.0 if "garden" in p else 0.0 for p in passages]


def _assistant(settings, fake_chat, reranker: Adapter | None) -> Assistant:
    # Without a fake, the real adapter: a hub model that cannot be fetched here.
    return make_assistant(settings, fake_chat, {"rerank": reranker} if reranker else None)


def _ingest(assistant, tmp_path: Path, more: int = 0) -> None:
    extra = [
        (f"note{i}.txt", f"Magma note {i}: rhyolite domes, ash and pumice.") for i in range(more)
    ]
    for name, text in [("volcano.txt", VOLCANO), ("garden.txt", GARDEN)] + extra:
        (tmp_path / name).write_text(text)
        assert assistant.ingest(tmp_path / name).status == "ok"


def test_without_a_reranker_retrieval_order_stands(assistant, fake_chat, tmp_path):
    _ingest(assistant, tmp_path)
    outcome = assistant.ask(Request(text=QUESTION))
    assert [s.route.task for s in outcome.steps] == ["rag", "text"]
    assert outcome.result.citations[0]["source"] == "volcano.txt"


def test_a_reranker_reorders_the_passages_and_is_a_step_in_the_ledger(
    settings, fake_chat, tmp_path
):
    reranker = FakeReranker()
    assistant = _assistant(replace(settings, reranker="ms-marco-minilm-l6-v2"), fake_chat, reranker)
    _ingest(assistant, tmp_path, more=4)
    outcome = assistant.ask(Request(text=QUESTION))
    assert outcome.status == "ok", outcome.error
    assert [s.route.task for s in outcome.steps] == ["rag", "rerank", "text"]
    query, passages = reranker.calls[-1]
    assert query == QUESTION and len(passages) == 6  # every candidate retrieval found
    cited = outcome.result.citations
    assert len(cited) == 4 and cited[0]["source"] == "garden.txt"
    assert [c["n"] for c in cited] == [1, 2, 3, 4] and cited[0]["rerank_score"] == 1.0
    # The answer reads the best sentences as plain lines, then the question (#19): no fences.
    read = fake_chat.seen[-1].text
    assert "<<<" not in read and read.rstrip().endswith(QUESTION)
    rows = {r["request_id"]: r for r in assistant.ledger.rows()}
    row = rows[outcome.steps[1].request_id]
    assert row["task"] == "rerank" and row["unit"] == "searches" and row["status"] == "ok"
    assert row["parent_id"] == outcome.steps[0].request_id
    assert row["usd_cloud"] == pytest.approx(0.002)  # one search at $2 per 1,000


def test_a_reranker_that_cannot_load_leaves_the_answer_and_says_so(settings, fake_chat, tmp_path):
    # The real adapter: its hub model cannot be fetched on this machine.
    assistant = _assistant(replace(settings, reranker="ms-marco-minilm-l6-v2"), fake_chat, None)
    _ingest(assistant, tmp_path, more=4)
    outcome = assistant.ask(Request(text=QUESTION))
    assert outcome.status == "ok", outcome.error
    # Of the 6 candidates retrieved for a reranker, the 4 the answer read are cited.
    cited = outcome.result.citations
    assert len(cited) == 4 and cited[0]["source"] == "volcano.txt"
    # The model reads at most three sentences, each from a retrieved passage, then the question.
    lines = fake_chat.seen[-1].text.split("\n\n")[0].splitlines()
    notes = [f"Magma note {i}: rhyolite domes, ash and pumice." for i in range(4)]
    texts = [VOLCANO, GARDEN, *notes]
    assert 1 <= len(lines) <= 3 and all(any(line in t for t in texts) for line in lines)
    assert any(n.startswith("Reranking failed") for n in outcome.result.notes), outcome.result
    failed = [r for r in assistant.ledger.rows() if r["task"] == "rerank"]
    assert failed and failed[0]["status"] != "ok"


def test_a_reranker_setting_naming_no_such_model_is_said_not_hidden(settings, fake_chat, tmp_path):
    assistant = _assistant(replace(settings, reranker="whisper-base"), fake_chat, None)
    _ingest(assistant, tmp_path)
    outcome = assistant.ask(Request(text=QUESTION))
    assert outcome.status == "ok"
    assert any("ASSISTANT_RERANKER='whisper-base'" in n for n in outcome.result.notes)


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("cross-encoder"))


def build_tiny_cross_encoder(folder: Path) -> Path:
    """An untrained 2-layer BERT cross-encoder in a folder, loaded like a hub one.

    Seeded: with some random initialisations two different passages score
    within pytest.approx of each other, which failed about one run in twelve.
    """
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from assistant.catalog.backends import minilm_folder

    tokenizer = AutoTokenizer.from_pretrained(minilm_folder())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    with seeded():
        BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_the_cross_encoder_adapter_scores_each_passage_from_a_local_folder(tiny_cross_encoder):
    adapter = CrossEncoderReranker(str(tiny_cross_encoder), device="cpu")
    adapter.load()
    passages = ["Rhyolite is viscous.", "Tomatoes need sun.", "Rhyolite is viscous."]
    scores = adapter.scores(QUESTION, passages)
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)
    assert scores[0] == pytest.approx(scores[2])  # the same pair, the same score
    assert scores[0] != pytest.approx(scores[1])
    assert adapter.scores(QUESTION, []) == []
    with pytest.raises(BadInput, match="no question"):
        adapter.scores("  ", passages)


def test_the_tiny_cross_encoder_is_the_same_whatever_ran_before(tmp_path):
    import torch
    from safetensors.torch import load_file

    weights = []
    for before in (1, 2):  # other tests leave torch's generator anywhere
        torch.manual_seed(before)
        folder = build_tiny_cross_encoder(tmp_path / str(before))
        weights.append(load_file(folder / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
