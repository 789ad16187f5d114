"""Settings for the real tier: a fresh ASSISTANT_HOME per test session whose
weights folder points at the weights `make prepare` already made, so the
one-time GGUF conversion (~30 s) is not paid again by every test run."""

from __future__ import annotations

from pathlib import Path

from assistant.settings import Settings


def real_settings(home: Path) -> Settings:
    prepared = Settings.from_env().weights_dir.resolve()
    home.mkdir(parents=True, exist_ok=True)
    if prepared.is_dir():
        (home / "weights").symlink_to(prepared, target_is_directory=True)
    return Settings(home=home, max_new_tokens=48)
