"""Settings for the real tier: a fresh ASSISTANT_HOME per test session whose
weights folder points at the weights `make prepare` already made, so the
one-time GGUF conversion (~30 s) is not paid again by every test run."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from assistant.settings import Settings
from tests.conftest import seeded


def real_settings(home: Path) -> Settings:
    prepared = Settings.from_env().weights_dir.resolve()
    home.mkdir(parents=True, exist_ok=True)
    if prepared.is_dir():
        (home / "weights").symlink_to(prepared, target_is_directory=True)
    return Settings(home=home, max_new_tokens=48)


@contextmanager
def served(settings: Settings) -> Iterator[tuple[str, object]]:
    """(base URL, Assistant) of the app as `make run` serves it, on a free loopback port."""
    import uvicorn

    from assistant.web.server import build_server

    app, assistant = build_server(settings, progress=lambda m: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start within 60 s"
    try:
        yield f"http://127.0.0.1:{port}/", assistant
    finally:
        server.should_exit = True
        thread.join(10)


def tiny_llama(folder: Path) -> Path:
    """A 2-layer, 32-wide llama with SmolLM2's tokenizer and chat template, seeded.

    Fine-tuning code runs on it for real in seconds: rendering, masking,
    training, merging and serving are the product's; only the model is tiny.
    Needs the prepared SmolLM2 pack for the tokenizer (skips without it).
    """
    import pytest
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.lora import TOKENIZER_FILES

    packed = Settings.from_env().weights_dir / "smollm2-135m-instruct"
    if not (packed / "tokenizer.json").is_file():
        pytest.skip("needs the prepared SmolLM2 pack (make prepare)")
    with seeded():
        config = LlamaConfig(
            vocab_size=49152,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=512,
            tie_word_embeddings=True,
        )
        LlamaForCausalLM(config).save_pretrained(folder)
    for name in TOKENIZER_FILES:
        if (packed / name).exists():
            (folder / name).write_bytes((packed / name).read_bytes())
    return folder
