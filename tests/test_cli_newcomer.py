"""The command line in a newcomer's first minutes (issue #18, item 10): `serve` as the
README documents it, Ctrl-C once, a recording's transcript in `ask --json`, and a
`ledger` a person can read."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.realenv import real_settings
from tests.test_cli import ROOT, cli

DATA = Path(__file__).parent / "data"


def test_plain_ledger_prints_a_header_times_and_costs(tmp_path):
    cli("ask", "", home=tmp_path)  # one rejected request: a row with no model and no cost
    out = cli("ledger", home=tmp_path)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0 and len(lines) == 2, out.stdout
    assert lines[0].split()[:3] == ["started", "status", "task"] and "$ here" in lines[0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  error ", lines[1]), lines[1]
    assert lines[1].rstrip().endswith("–")  # nothing counted, rather than "0 → 0 tokens"


def test_plain_ledger_of_a_fresh_home_says_there_is_nothing_yet(tmp_path):
    out = cli("ledger", home=tmp_path)
    assert out.returncode == 0 and "no requests yet" in out.stdout


@pytest.mark.real
def test_ask_with_only_a_recording_puts_the_transcript_in_steps(tmp_path):
    home = real_settings(tmp_path / "home").home
    out = cli("ask", "", "--attach", str(DATA / "speech_en.wav"), "--json", home=home)
    reply = json.loads(out.stdout)
    assert reply["status"] == "ok", reply["error"]
    asr = [s for s in reply["steps"] if s["task"] == "asr"]
    assert asr and "fox" in asr[0]["text"].lower(), reply["steps"]


@pytest.mark.real
def test_ask_attach_reads_a_document_once_unless_keep_and_says_what_loads(tmp_path):
    home = real_settings(tmp_path / "home").home
    rota = tmp_path / "lighthouse-rota.md"
    rota.write_text("# Lighthouse rota\n\nOn Tuesdays Marta keeps the lamp.\n")
    question = "Who keeps the lamp on Tuesdays?"
    slow = 600  # cold loads of the embedder and the text model on a busy two-core machine
    once = cli("ask", question, "--attach", str(rota), "--json", home=home, timeout=slow)
    reply = json.loads(once.stdout)
    assert reply["status"] == "ok", reply["error"]
    assert [c["source"] for c in reply["output"]["citations"]] == ["lighthouse-rota.md"]
    # A cold start says which model loads, by name and size, on stderr.
    assert re.search(r"Loading all-MiniLM-L6-v2[\w ]* \(\d+ MB\)…", once.stderr), once.stderr
    listed = json.loads(cli("documents", "--json", home=home).stdout)
    assert listed == [], listed
    kept = cli("ask", question, "--attach", str(rota), "--keep", "--json", home=home, timeout=slow)
    assert json.loads(kept.stdout)["status"] == "ok"
    listed = json.loads(cli("documents", "--json", home=home).stdout)
    assert [d["name"] for d in listed] == ["lighthouse-rota.md"], listed


@pytest.mark.real
def test_serve_answers_then_stops_cleanly_on_the_first_ctrl_c(tmp_path):
    home = real_settings(tmp_path / "home").home
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ASSISTANT_HOME": str(home), "GRADIO_SERVER_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240  # imports and the app's build on a busy 2-core CI
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                    assert page.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(1)
        # A stream held open, as a browser tab's queue connection is.
        stream = urllib.request.urlopen(
            f"http://127.0.0.1:{port}/gradio_api/heartbeat/newcomer", timeout=30
        )
        started = time.monotonic()
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
        took = time.monotonic() - started
        stream.close()
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, output
    assert "Traceback" not in output and "Stopped." in output, output
    assert took < 20, took
