"""Models that must be downloaded fail at once and clearly when they cannot be."""

from __future__ import annotations

import time

import pytest

from models.base import ModelUnavailable, require_download


def test_a_local_folder_or_a_cached_copy_needs_no_network(tmp_path):
    require_download(str(tmp_path), "https://unreachable.invalid", cached=False)
    require_download("org/model", "https://unreachable.invalid", cached=True)


def test_an_unreachable_hub_is_said_within_seconds():
    started = time.monotonic()
    # .invalid never resolves (RFC 2606): no packet leaves for a real host.
    with pytest.raises(ModelUnavailable, match="cannot reach") as err:
        require_download("org/model", "https://hub.invalid", cached=False)
    assert time.monotonic() - started < 5
    assert "python -m assistant models" in str(err.value)


def test_the_text_adapter_checks_before_loading(tmp_path, monkeypatch):
    from models.text import TransformersChat

    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    adapter = TransformersChat("someone/not-cached-model")
    with pytest.raises(ModelUnavailable, match="hub.invalid"):
        adapter.load()


def test_hub_cached_is_false_for_what_is_not_a_repo_id(tmp_path):
    from models.base import hub_cached

    # A local folder reached hub_cached once and huggingface_hub raised on it.
    assert hub_cached(str(tmp_path / "weights" / "model"), "config.json") is False
    assert hub_cached("large-v3", "model.bin") is False
