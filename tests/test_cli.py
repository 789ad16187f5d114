"""The CLI as a user runs it: clear messages and exit codes, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cli(
    *args: str, home: Path, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    env = {**os.environ, "ASSISTANT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
    )


def test_models_json_lists_the_catalog(tmp_path):
    out = cli("models", "--json", home=tmp_path)
    rows = {r["id"]: r for r in json.loads(out.stdout)}
    assert out.returncode == 0 and rows["smollm2-135m-instruct"]["family"] == "text"


def test_an_empty_question_exits_2_with_a_message(tmp_path):
    out = cli("ask", "", "--json", home=tmp_path)
    assert out.returncode == 2
    assert "empty" in json.loads(out.stdout)["error"] and "Traceback" not in out.stderr


def test_an_unknown_model_exits_2_listing_the_known(tmp_path):
    out = cli("ask", "hi", "--model", "nope", home=tmp_path)
    assert out.returncode == 2 and "smollm2-135m-instruct" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_megabyte_from_stdin_gets_the_length_message(tmp_path):
    out = cli("ask", "-", home=tmp_path, stdin="a" * 1_000_000)
    assert out.returncode == 2 and "1,000,000 characters" in out.stderr


def test_route_only_runs_no_model(tmp_path):
    out = cli("ask", "draw a cat", "--route-only", "--json", home=tmp_path)
    route = json.loads(out.stdout)
    # the demo model on a CPU (sd-turbo when a CUDA GPU is present)
    assert route["task"] == "image_generation" and route["model"] == "demo-scenes"
    assert not (tmp_path / "weights").exists()


def test_a_missing_attachment_is_named(tmp_path):
    out = cli("ask", "hi", "--attach", str(tmp_path / "nope.wav"), home=tmp_path)
    assert out.returncode == 2 and "nope.wav" in out.stderr


def test_ledger_csv_has_a_header_and_the_rejected_request(tmp_path):
    cli("ask", "", home=tmp_path)
    out = cli("ledger", "--csv", home=tmp_path)
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("request_id,parent_id,session_id") and len(lines) == 2


def test_an_unusable_home_is_said_plainly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = cli("ask", "hi", home=blocker / "home")
    assert out.returncode == 2 and "not a writable folder" in out.stderr
    assert "Traceback" not in out.stderr
