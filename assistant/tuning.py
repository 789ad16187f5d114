"""Fine-tune a chat model on a person's examples, prove it helped, and serve it at once.

The flow of `tune` (and the Fine-tune tab): check the data, the base and
the name before anything trains; train (training/lora.py) under
ASSISTANT_HOME/tuned/<name>; evaluate base and tuned side by side on the
held-back examples through the eval engine; write the model card; only
then register the catalog entry (in ASSISTANT_HOME/catalog.json and in
the running catalog), so a failed or stopped run never leaves a model
half-registered. The training is one ledger row (task ``fine_tune``)
priced beside a hosted fine-tuning job.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from assistant.accounting.costs import cost_of
from assistant.accounting.ledger import Finished, Started
from assistant.catalog.entries import Entry
from models.base import BadInput, Request, Usage, pick_device

# Prompts unrelated to any one task, answered by the base before training and
# mixed in with the person's examples (see `replay`).
GENERAL = Path(__file__).resolve().parents[1] / "training" / "examples" / "general.txt"
REPLAY_TOKENS = 96  # a short answer is enough to keep the base's manner
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
# Runtimes a tuned model is served on, by its base's: the same, so it is as
# fast as its base (llama.cpp through a GGUF export, CTranslate2 by its own
# conversion on first load); anything else falls back to CTranslate2.
SERVABLE_AS = {
    "ctranslate2": "ctranslate2",
    "transformers": "transformers",
    "llama.cpp": "llama.cpp",
}


def tunable(assistant) -> list[str]:
    """Catalog ids that can be fine-tuned on this machine: local text models with weights here."""
    return [e.id for e in assistant.catalog.entries.values() if _local_text(e)]


def _local_text(entry: Entry) -> bool:
    if entry.family != "text" or not entry.built:
        return False
    if entry.pack is not None:
        return True
    folder = entry.source.get("folder")
    return bool(folder) and (Path(folder) / "config.json").is_file()


def check(assistant, base: str, name: str) -> Entry:
    """The base entry, or BadInput saying what to change (nothing has run yet)."""
    if not NAME.match(name):
        raise BadInput(
            f"'{name}' is not a usable model name: use 2-63 lowercase letters, digits, "
            "dots, dashes or underscores, starting with a letter or digit."
        )
    if name in assistant.catalog.entries:
        raise BadInput(f"'{name}' is already a model in the catalog; choose another name.")
    entry = assistant.catalog.get(base)
    if not _local_text(entry):
        why = (
            "a remote endpoint"
            if entry.endpoint
            else "a hub model"
            if entry.hub_id
            else f"a {entry.family} model"
        )
        raise BadInput(
            f"'{base}' cannot be fine-tuned here ({why}). Models that can: "
            f"{', '.join(tunable(assistant))}."
        )
    return entry


def tune(
    assistant,
    data_path: Path,
    base: str,
    name: str,
    method: str = "lora",
    epochs: int = 3,
    progress: Callable | None = None,
    stop: threading.Event | None = None,
    source: str = "cli",
    keep_general: bool = True,
) -> dict:
    """Train, evaluate, register; returns the model card (also saved beside the model).

    progress gets a training step (training.lora's Step) or a line of text.

    keep_general: mix the base's own answers to general prompts into training
    (`replay`), so a format taught for one task does not take over every answer.
    """
    from assistant.catalog.backends import prepare_weights
    from training import data
    from training.lora import Hyper, train

    entry = check(assistant, base, name)
    if method not in ("lora", "full"):
        raise BadInput(f"Method '{method}' is not one of lora, full.")
    if not 1 <= epochs <= 20:
        raise BadInput(f"Epochs must be between 1 and 20; {epochs} given.")
    chats, sha = data.load(Path(data_path))
    split = data.split(chats, sha, Path(data_path))
    say = progress or (lambda *_: None)
    replayed = replay(assistant, base, len(split.train), say, stop) if keep_general else ()
    folder = Path(prepare_weights(entry, assistant.settings) or entry.source["folder"])
    work = assistant.settings.home / "tuned" / name
    work.mkdir(parents=True, exist_ok=True)
    hyper = Hyper(method=method, epochs=epochs)
    device = pick_device(assistant.settings.device)
    device = "cuda" if device.startswith("cuda") else "cpu"  # mps: LoRA's ops are not all there
    request_id = uuid.uuid4().hex
    assistant.ledger.start(
        Started(
            request_id,
            "tune",
            source,
            "fine_tune",
            name,
            f"fine-tuning {base} on {Path(data_path).name}",
            1.0,
            user="local",
        )
    )
    started = time.perf_counter()
    trained = _recorded(
        assistant,
        request_id,
        started,
        lambda: train(
            folder, split.train + replayed, split.validation, work, hyper, say, stop, device
        ),
    )
    backend, served = _served(assistant, entry, trained.folder, say)
    tuned = _tuned_entry(entry, name, base, backend, served, trained.folder)
    card = {
        "id": name,
        "base": base,
        "runtime": backend,
        "method": method,
        "data": _data_card(Path(data_path), sha, len(chats), split, len(replayed), trained.cut),
        "hyper": asdict(hyper),
        "training": _training_card(trained),
    }
    _register(assistant, tuned, persist=False)
    try:
        card["eval"] = _before_after(assistant, split, base, name, work)
    except BaseException:
        _unregister(assistant, name)
        raise
    _finish(assistant, request_id, started, device, card, tuned)
    return card


def _recorded(assistant, request_id: str, started: float, run: Callable):
    """``run()`` (the training); if it stops or fails, the ledger row says so before it raises.

    The checkpoint stays for a resume either way.
    """
    try:
        return run()
    except BaseException as err:
        assistant.ledger.finish(
            Finished(
                request_id,
                "error",
                f"{type(err).__name__}: {err}",
                run_s=time.perf_counter() - started,
            )
        )
        raise


def _tuned_entry(entry: Entry, name: str, base: str, backend: str, source: dict, folder) -> Entry:
    """The catalog entry of the tuned model: the base's facts, its own weights and runtime."""
    return Entry(
        id=name,
        name=f"{name} (fine-tuned {base})",
        family="text",
        tasks=("text",),
        backend=backend,
        default_for=(),
        source=source,
        license=f"{entry.license} (base {base})",
        params_m=entry.params_m,
        size_mb=_size_mb(folder),
        memory_mb=entry.memory_mb,
        built=True,
        context_window=entry.context_window,
    )


def _data_card(path: Path, sha: str, examples: int, split, replayed: int, cut: int) -> dict:
    return {
        "file": str(path.resolve()),
        "sha256": sha,
        "examples": examples,
        "train": len(split.train),
        "validation": len(split.validation),
        "general_replayed": replayed,
        "cut_to_max_tokens": cut,
    }


def _training_card(trained) -> dict:
    return {
        "seconds": round(trained.seconds, 1),
        "steps": trained.steps,
        "seconds_per_step": round(trained.seconds_per_step, 2),
        "tokens": trained.tokens,
        "tokens_per_s": round(trained.tokens_per_s, 1),
        "losses": list(trained.losses),
        "val_loss_before": trained.val_loss_before,
        "val_loss_after": trained.val_loss_after,
    }


def _finish(assistant, request_id, started, device, card: dict, tuned: Entry) -> None:
    """Price the whole run (training and its evaluation), save the card, register the
    model for good, then close the ledger row."""
    work = assistant.settings.home / "tuned" / tuned.id
    tokens = card["training"]["tokens"]
    seconds = time.perf_counter() - started
    cost = cost_of("fine_tune", device, seconds, Usage(tokens, 0, "tokens"), assistant.prices)
    card["cost"] = cost.as_dict()
    (work / "card.json").write_text(json.dumps(card, indent=1))
    _register(assistant, tuned, persist=True)
    assistant.ledger.finish(
        Finished(
            request_id,
            "ok",
            None,
            run_s=seconds,
            units_in=tokens,
            unit="tokens",
            device=cost.device,
            cost=cost,
            extra={"card": str(work / "card.json")},
        )
    )


def replay(assistant, base: str, count: int, say, stop: threading.Event | None = None) -> tuple:
    """The base model's own answers to up to `count` general prompts, as training chats.

    A few dozen examples of one format, three epochs, teach a 135M model to
    answer everything in that format: measured with `bench tune`, SmolLM2
    after the ticket examples got 4 of 24 factual questions right where its
    base got 18. Training on the base's answers to unrelated prompts beside
    them (self-distillation, or "replay") keeps its behaviour where the
    person's data says nothing. The prompts are disjoint from the factual
    set the bench scores, so that measure stays held out.
    """
    from training.data import Chat

    prompts = [p for p in GENERAL.read_text(encoding="utf-8").splitlines() if p.strip()]
    chats = []
    for i, prompt in enumerate(prompts[:count]):
        if stop is not None and stop.is_set():
            from training.lora import Stopped

            raise Stopped("Stopped before training.")
        say(f"Keeping general answers: {i + 1}/{min(count, len(prompts))}")
        request = Request(text=prompt, model=base, max_new_tokens=REPLAY_TOKENS)
        outcome = assistant.ask(request, source="tune")
        answer = (outcome.result.text if outcome.result else "").strip()
        if outcome.status == "ok" and answer:
            chats.append(Chat(line=0, messages=(("user", prompt), ("assistant", answer))))
    return tuple(chats)


def _served(assistant, base: Entry, folder: Path, say) -> tuple[str, dict]:
    """(backend, catalog source) for the tuned model: the base's runtime where it can be."""
    backend = SERVABLE_AS.get(base.backend, "ctranslate2")
    source = {"folder": str(folder)}
    if backend != "llama.cpp":
        return backend, source
    from models import packs
    from models.base import ModelUnavailable
    from training.gguf_export import export

    try:
        base_gguf = (
            packs.joined_file(base.pack, assistant.settings.weights_dir)
            if base.pack
            else Path(base.source["gguf"])
        )
        say("Writing the tuned model as GGUF for llama.cpp…")
        gguf = export(folder, base_gguf, folder.parent / "model.gguf")
    except (ModelUnavailable, KeyError) as err:
        say(f"{err} Serving it on CTranslate2.")
        return "ctranslate2", source
    runtime = base.source.get("runtime")  # the library the runtime needs, as for the base
    return backend, {**source, "gguf": str(gguf), **({"runtime": runtime} if runtime else {})}


def _before_after(assistant, split, base: str, name: str, work: Path) -> dict:
    """Base and tuned on the held-back examples, through the eval engine, side by side."""
    from assistant.evaluation.engine import evaluate

    answers = [chat.messages[-1][1] for chat in split.validation]
    objects = [_json_object(a) for a in answers]
    metric = "json" if all(o is not None for o in objects) else "contains"
    path = work / "validation.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for chat, answer, obj in zip(split.validation, answers, objects, strict=True):
            prompt = "\n\n".join(c for r, c in chat.messages[:-1] if r == "user")
            expected = sorted(obj) if metric == "json" else [answer]
            f.write(
                json.dumps({"id": f"line-{chat.line}", "input": prompt, "expected": expected})
                + "\n"
            )
    report = evaluate(assistant, path, [base, name], metric)
    return {"metric": metric, "models": report["models"], "run": report["run"]}


def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _register(assistant, entry: Entry, persist: bool) -> None:
    """Into the running catalog and pool; with persist, into ASSISTANT_HOME/catalog.json."""
    assistant.catalog.entries[entry.id] = entry
    assistant.pool.sizes[entry.id] = entry.memory_mb
    if not persist:
        return
    path = assistant.settings.catalog_file
    data = json.loads(path.read_text()) if path.is_file() else {"models": []}
    raw = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(entry).items()}
    data["models"] = [m for m in data.get("models", []) if m.get("id") != entry.id] + [raw]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)  # never a half-written catalog


def _unregister(assistant, name: str) -> None:
    assistant.catalog.entries.pop(name, None)
    assistant.pool.sizes.pop(name, None)


def _size_mb(folder: Path) -> int:
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20)


def discard(assistant, name: str) -> None:
    """Remove a tuned model: catalog entry, weights and card."""
    _unregister(assistant, name)
    path = assistant.settings.catalog_file
    if path.is_file():
        data = json.loads(path.read_text())
        data["models"] = [m for m in data.get("models", []) if m.get("id") != name]
        path.write_text(json.dumps(data, indent=1))
    shutil.rmtree(assistant.settings.home / "tuned" / name, ignore_errors=True)
