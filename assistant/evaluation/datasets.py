"""Evaluation datasets: one example a line, refused whole before anything runs.

A dataset is JSONL (or CSV with the same columns), one example a line::

    {"id": "q1", "input": "…", "attachments": ["clips/a.wav"], "expected": "…" | ["…", "…"]}

Attachments are paths relative to the dataset file and must stay inside its
folder: a dataset is someone's file, and "../../etc/passwd" in it must not
make the server read (and a model repeat) what lies outside.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from models.base import BadInput

MAX_EXAMPLES = 5000  # a run of more would take hours on a CPU; split it
FIELDS = ("id", "input", "attachments", "expected")


@dataclass(frozen=True)
class Example:
    """One row of a dataset, checked."""

    id: str  # unique within the dataset; how items are matched across runs
    input: str  # the prompt sent to each model (may be empty with attachments)
    attachments: tuple[Path, ...]  # resolved, inside the dataset's folder
    expected: tuple[str, ...]  # acceptable answers; empty for metrics that need none


def load(path: Path) -> tuple[Example, ...]:
    """Every example of a .jsonl or .csv file, or BadInput naming the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"No dataset at {path}.")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = jsonl_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise BadInput(f"{path.name}: a dataset is a .jsonl or .csv file.")
    examples: list[Example] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        example = _example(row, line, path.parent)
        if example.id in seen:
            raise BadInput(
                f"{path.name} line {line}: id '{example.id}' was already used on "
                f"line {seen[example.id]}; ids must be unique."
            )
        seen[example.id] = line
        examples.append(example)
        if len(examples) > MAX_EXAMPLES:
            raise BadInput(f"{path.name}: more than {MAX_EXAMPLES} examples; split the file.")
    if not examples:
        raise BadInput(f"{path.name} holds no examples.")
    return tuple(examples)


def jsonl_rows(path: Path):
    """(line number, object) for each non-blank line; a clear BadInput naming the
    line otherwise. Also reads fine-tuning sets (training/data.py)."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as err:
                raise BadInput(f"{path.name} line {number}: not JSON ({err.msg}).") from None
            if not isinstance(row, dict):
                raise BadInput(f"{path.name} line {number}: a line must be a JSON object.")
            yield number, row


def _csv_rows(path: Path):
    """CSV: attachments and expected may hold several values separated by '|'."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = {"id", "input"} - set(reader.fieldnames or ())
        if missing:
            raise BadInput(
                f"{path.name} line 1: the header lacks {', '.join(sorted(missing))} "
                f"(columns: {', '.join(FIELDS)})."
            )
        for row in reader:
            number = reader.line_num
            row = {k: v for k, v in row.items() if k is not None}
            for key in ("attachments", "expected"):
                if row.get(key):
                    row[key] = [part.strip() for part in row[key].split("|") if part.strip()]
            yield number, row


def _example(row: dict, line: int, folder: Path) -> Example:
    where = f"line {line}"
    unknown = set(row) - set(FIELDS)
    if unknown:
        raise BadInput(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
            f"a line has {', '.join(FIELDS)}."
        )
    ident = row.get("id")
    if not isinstance(ident, (str, int)) or not str(ident).strip():
        raise BadInput(f"{where}: 'id' is missing or empty.")
    text = row.get("input", "")
    if not isinstance(text, str):
        raise BadInput(f"{where}: 'input' must be a string.")
    attachments = row.get("attachments") or []
    if not isinstance(attachments, list) or not all(isinstance(a, str) for a in attachments):
        raise BadInput(f"{where}: 'attachments' must be a list of paths.")
    if not text.strip() and not attachments:
        raise BadInput(f"{where}: neither 'input' nor 'attachments' says what to ask.")
    expected = row.get("expected", [])
    if isinstance(expected, str):
        expected = [expected]
    if not isinstance(expected, list) or not all(isinstance(e, str) for e in expected):
        raise BadInput(f"{where}: 'expected' must be a string or a list of strings.")
    return Example(
        str(ident).strip(),
        text,
        tuple(_inside(folder, a, where) for a in attachments),
        tuple(expected),
    )


def _inside(folder: Path, relative: str, where: str) -> Path:
    root = folder.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise BadInput(
            f"{where}: attachment '{relative}' lies outside the dataset's folder; "
            "keep attachments beside the dataset."
        )
    if not target.is_file():
        raise BadInput(f"{where}: attachment '{relative}' does not exist.")
    return target
