"""Teach a small chat model from examples with LoRA, on the CPU here or a GPU.

Why a plain torch loop and not TRL's SFTTrainer: with the datasets/pyarrow
releases on PyPI today, SFTTrainer fails before its first step (datasets
cannot pickle pyarrow's MonthDayNano type while fingerprinting its map).
The loop below is what SFTTrainer does for chat data, in 80 lines: the
chat template renders each example, only the assistant's tokens carry a
loss, LoRA adapters (PEFT) on every linear layer learn, and the result is
merged back into plain weights so every runtime can serve it.

Seeded end to end (shuffle, LoRA init, dropout-free), so the same data and
settings give the same model. A checkpoint after every epoch lets a killed
run resume where it stopped.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from training.data import Chat

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "generation_config.json",
)


class Stopped(Exception):
    """Training was asked to stop; the last finished epoch's checkpoint is kept."""


@dataclass(frozen=True)
class Hyper:
    """What a run was trained with; recorded on the model card."""

    method: str = "lora"  # "lora" | "full"
    epochs: int = 3
    lr: float = 3e-4  # LoRA; full fine-tuning uses lr / 10
    batch: int = 8
    rank: int = 16
    alpha: int = 32
    max_tokens: int = 512  # longer examples are cut (and counted)
    seed: int = 0


@dataclass(frozen=True)
class StepReport:
    step: int
    total: int
    epoch: int
    loss: float
    elapsed_s: float
    eta_s: float


@dataclass(frozen=True)
class Trained:
    folder: Path  # merged model, a transformers folder with its tokenizer
    losses: tuple[float, ...]  # training loss per step
    val_loss_before: float
    val_loss_after: float
    seconds: float
    steps: int
    tokens: int  # tokens seen in training (all epochs), what a cloud job bills
    cut: int  # examples cut to max_tokens
    seconds_per_step: float
    tokens_per_s: float


def encode(tokenizer, chat: Chat, max_tokens: int) -> tuple[list[int], list[int], bool]:
    """(input ids, labels, was cut): labels are -100 except on the assistant's turns.

    Each assistant turn's span is found by rendering the conversation up to
    the turn (with the generation prompt) and up to its end: the tokens in
    between are what the model should have said.
    """
    messages = [{"role": r, "content": c} for r, c in chat.messages]
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
    ids = list(ids["input_ids"] if isinstance(ids, dict) else ids)
    labels = [-100] * len(ids)
    for i, (role, _) in enumerate(chat.messages):
        if role != "assistant":
            continue
        start = len(_ids(tokenizer, messages[:i], generation=True))
        end = len(_ids(tokenizer, messages[: i + 1], generation=False))
        labels[start:end] = ids[start:end]
    cut = len(ids) > max_tokens
    return ids[:max_tokens], labels[:max_tokens], cut


def _ids(tokenizer, messages, generation: bool) -> list[int]:
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=False, add_generation_prompt=generation
    )
    return list(out["input_ids"] if isinstance(out, dict) else out)


def _trainable(model, hyper: Hyper):
    """(the model with LoRA adapters, or whole, as ``hyper.method`` says; its learning rate)."""
    if hyper.method != "lora":
        return model, hyper.lr / 10  # every weight moves: a LoRA rate would wreck a 135M model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=hyper.rank,
        lora_alpha=hyper.alpha,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config), hyper.lr


def _step(model, optimizer, batch) -> float:
    """One optimiser step on one batch (ids, labels, mask); its loss, rounded for the record."""
    ids, labels, mask = batch
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return round(float(loss.detach()), 4)


def _save(model, base: Path, folder: Path) -> Path:
    """The trained (merged) model in ``folder``, with the base's tokenizer files beside it."""
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder)
    for name in TOKENIZER_FILES:  # as the base has them, so the chat template is the same
        if (base / name).exists():
            shutil.copy2(base / name, folder / name)
    return folder


def train(
    base: Path,
    train_set: tuple[Chat, ...],
    validation: tuple[Chat, ...],
    out: Path,
    hyper: Hyper = Hyper(),
    progress: Callable[[StepReport], None] | None = None,
    stop: threading.Event | None = None,
    device: str = "cpu",
) -> Trained:
    """Train on ``train_set``, write the merged model to ``out/model``, and report."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    random.seed(hyper.seed)
    torch.manual_seed(hyper.seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model, lr = _trainable(
        AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).to(device), hyper
    )
    encoded = [encode(tokenizer, c, hyper.max_tokens) for c in train_set]
    held = [encode(tokenizer, c, hyper.max_tokens) for c in validation]
    cut = sum(c for _, _, c in encoded + held)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    per_epoch = math.ceil(len(encoded) / hyper.batch)
    total = per_epoch * hyper.epochs
    checkpoint = out / "checkpoint"
    start_epoch, losses = _resume(checkpoint, model, optimizer, hyper)
    val_before = _loss(model, held, pad, device) if start_epoch == 0 else _saved_val(checkpoint)
    started = time.perf_counter()
    step = start_epoch * per_epoch
    for epoch in range(start_epoch, hyper.epochs):
        order = list(range(len(encoded)))
        random.Random(hyper.seed + epoch).shuffle(order)
        model.train()
        for first in range(0, len(order), hyper.batch):
            if stop is not None and stop.is_set():
                raise Stopped(
                    f"stopped at step {step} of {total}; {epoch} epoch(s) kept in the checkpoint"
                )
            batch = [encoded[i] for i in order[first : first + hyper.batch]]
            losses.append(_step(model, optimizer, _batch(batch, pad, device)))
            step += 1
            if progress:
                elapsed = time.perf_counter() - started
                done_here = step - start_epoch * per_epoch
                eta = elapsed / done_here * (total - step)
                progress(StepReport(step, total, epoch + 1, losses[-1], elapsed, eta))
        _save_checkpoint(checkpoint, model, optimizer, hyper, epoch + 1, losses, val_before)
    seconds = time.perf_counter() - started
    val_after = _loss(model, held, pad, device)
    if hyper.method == "lora":
        model = model.merge_and_unload()
    folder = _save(model, Path(base), out / "model")
    tokens = sum(len(ids) for ids, _, _ in encoded) * (hyper.epochs - start_epoch)
    trained_steps = max(1, step - start_epoch * per_epoch)
    return Trained(
        folder,
        tuple(losses),
        val_before,
        val_after,
        seconds,
        step,
        tokens,
        cut,
        seconds / trained_steps,
        tokens / max(seconds, 1e-9),
    )


def _batch(batch, pad: int, device: str):
    import torch

    width = max(len(ids) for ids, _, _ in batch)
    ids = [i + [pad] * (width - len(i)) for i, _, _ in batch]
    labels = [lab + [-100] * (width - len(lab)) for _, lab, _ in batch]
    mask = [[1] * len(i) + [0] * (width - len(i)) for i, _, _ in batch]
    as_tensor = lambda rows: torch.tensor(rows, device=device)  # noqa: E731
    return as_tensor(ids), as_tensor(labels), as_tensor(mask)


def _loss(model, examples, pad: int, device: str) -> float:
    """Mean loss over the assistant tokens of held-back examples."""
    import torch

    if not examples:
        return float("nan")
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for example in examples:
            ids, labels, mask = _batch([example], pad, device)
            n = int((labels[:, 1:] != -100).sum())
            if n:
                total += float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) * n
                count += n
    return round(total / max(count, 1), 4)


def _save_checkpoint(
    folder: Path, model, optimizer, hyper: Hyper, epochs: int, losses, val_before: float
) -> None:
    import torch

    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    trainable = {
        k: v for k, v in model.state_dict().items() if hyper.method == "full" or "lora_" in k
    }
    torch.save({"weights": trainable, "optimizer": optimizer.state_dict()}, tmp / "state.pt")
    (tmp / "progress.json").write_text(
        json.dumps(
            {
                "epochs": epochs,
                "losses": list(losses),
                "hyper": asdict(hyper),
                "val_before": val_before,
            }
        )
    )
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)  # a kill mid-save leaves the previous checkpoint whole


def _resume(folder: Path, model, optimizer, hyper: Hyper) -> tuple[int, list[float]]:
    """(epochs already done, their losses) from a checkpoint of the same settings."""
    import torch

    meta = folder / "progress.json"
    if not meta.exists():
        return 0, []
    saved = json.loads(meta.read_text())
    if saved["hyper"] != asdict(hyper):
        shutil.rmtree(folder)  # other settings: the old run does not apply
        return 0, []
    state = torch.load(folder / "state.pt", weights_only=True)
    model.load_state_dict(state["weights"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    return int(saved["epochs"]), list(saved["losses"])


def _saved_val(folder: Path) -> float:
    return float(json.loads((folder / "progress.json").read_text())["val_before"])
