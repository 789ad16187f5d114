"""Fine-tuning examples: chat JSONL (as OpenAI and TRL take them) or prompt,completion CSV.

Every line is checked before anything trains, and a refusal names the line
and what to change: a run that fails at minute six over line 31 wastes the
person's time and the machine's.
"""

from __future__ import annotations

import csv
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from assistant.evaluation.datasets import jsonl_rows
from models.base import BadInput

MIN_EXAMPLES = 8  # fewer teach nothing measurable, and leave no validation split
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Chat:
    """One example: a conversation whose assistant turns are what is taught."""

    line: int  # where it came from, for messages
    messages: tuple[tuple[str, str], ...]  # (role, content), in order


@dataclass(frozen=True)
class Split:
    train: tuple[Chat, ...]
    validation: tuple[Chat, ...]
    sha256: str  # of the data file, for the model card
    path: str


def load(path: Path) -> tuple[tuple[Chat, ...], str]:
    """(examples, sha256 of the file), or BadInput naming the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"No training data at {path}.")
    raw = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        chats = list(_jsonl(path))
    elif suffix == ".csv":
        chats = list(_csv(path))
    else:
        raise BadInput(
            f"{path.name}: training data is .jsonl (chat messages) or .csv (prompt,completion)."
        )
    if len(chats) < MIN_EXAMPLES:
        raise BadInput(
            f"{path.name} has {len(chats)} example(s); at least {MIN_EXAMPLES} are "
            "needed (a few dozen teach a format well)."
        )
    return tuple(chats), hashlib.sha256(raw).hexdigest()


def split(chats: tuple[Chat, ...], sha256: str, path: Path, seed: int = 0) -> Split:
    """Hold back 10 % (at least 2) for validation, the same ones for the same seed."""
    order = list(chats)
    random.Random(seed).shuffle(order)
    held = max(2, round(len(order) * 0.1))
    return Split(tuple(order[held:]), tuple(order[:held]), sha256, str(path))


def _jsonl(path: Path):
    for number, row in jsonl_rows(path):
        if not isinstance(row.get("messages"), list):
            raise BadInput(
                f'{path.name} line {number}: expected {{"messages": [{{"role": '
                '..., "content": ...}, ...]}.'
            )
        yield _chat(path.name, number, row["messages"])


def _csv(path: Path):
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not {"prompt", "completion"} <= set(reader.fieldnames or ()):
            raise BadInput(f"{path.name} line 1: the header needs prompt and completion columns.")
        for row in reader:
            messages = [
                {"role": "user", "content": row.get("prompt") or ""},
                {"role": "assistant", "content": row.get("completion") or ""},
            ]
            yield _chat(path.name, reader.line_num, messages)


def _chat(name: str, line: int, messages: list) -> Chat:
    where = f"{name} line {line}"
    turns = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise BadInput(f"{where}: message {i + 1} needs a role of {', '.join(ROLES)}.")
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            raise BadInput(f"{where}: message {i + 1} ({m['role']}) has no text content.")
        turns.append((m["role"], m["content"]))
    if not any(role == "assistant" for role, _ in turns):
        raise BadInput(f"{where}: no assistant message, so nothing to learn from it.")
    if turns[-1][0] != "assistant":
        raise BadInput(f"{where}: the last message should be the assistant's answer.")
    return Chat(line, tuple(turns))
