"""The llama.cpp runtime with a stub server process: streaming, stop, cap, restart, fallback.

``tests/llama_stub.py`` is started exactly as ``models.llama_server`` is (a
child process on a loopback port, a health check), so everything the
adapter and the pool decide is checked here, where CI runs it, without
weights. The real runtime's test is in test_real.py (marked ``real``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path

import pytest

from assistant.catalog.entries import Catalog
from assistant.flow.pool import Pool
from assistant.settings import Settings
from models.base import Adapter, BadInput, Message, ModelUnavailable, Request, Result
from models.text_llamacpp import NATIVE, PORTABLE, LlamaCppChat, LlamaServer
from tests.test_text_batching import CharTokenizer

STUB = str(Path(__file__).with_name("llama_stub.py"))


@pytest.fixture
def log(tmp_path) -> Path:
    return tmp_path / "requests.jsonl"


@pytest.fixture
def chat(log):
    server = LlamaServer(
        Path("stub.gguf"), 400, 8, 1, command=[sys.executable, STUB, "--log", str(log)]
    )
    adapter = LlamaCppChat(
        files=lambda: ("unused", "unused"),
        tokenizer=CharTokenizer(),
        server=server,
        context_window=400,
    )
    adapter.load()
    yield adapter
    adapter.unload()


def collect(chat: LlamaCppChat, request: Request, cancel=None) -> tuple[list[str], Result]:
    items = list(chat.stream(request, cancel))
    return [i for i in items if isinstance(i, str)], items[-1]


def test_streams_the_reply_with_the_shared_chat_template_and_usage(chat, log):
    pieces, result = collect(chat, Request(text="hello there"))
    assert len(pieces) == len("hello there") and "".join(pieces) == "ereht olleh" == result.text
    prompt = "user: hello there\nassistant:"  # the transformers template, rendered here
    assert result.usage.units_in == len(prompt) and result.usage.units_out == len(pieces)
    sent = json.loads(log.read_text().splitlines()[-1])
    assert sent["prompt"] == [ord(c) for c in prompt]


def test_greedy_and_sampling_are_asked_as_on_the_other_backends(chat, log):
    collect(chat, Request(text="hi", temperature=0.0))
    collect(chat, Request(text="hi", temperature=0.7))
    greedy, sampled = (json.loads(line) for line in log.read_text().splitlines())
    assert greedy["temperature"] == 0.0 and sampled["temperature"] == 0.7
    assert sampled["top_k"] == 0 and sampled["top_p"] == 1.0 and sampled["min_p"] == 0.0
    assert greedy["repeat_penalty"] == 1.1 and greedy["cache_prompt"] is True


def test_the_reply_cap_is_sent_and_honoured(chat, log):
    _, result = collect(chat, Request(text="go on forever", max_new_tokens=7))
    assert result.usage.units_out == 7 and len(result.text) == 7
    assert json.loads(log.read_text().splitlines()[-1])["max_tokens"] == 7


def test_stop_ends_the_reply_at_the_next_piece(chat):
    cancel = threading.Event()
    seen = []
    for item in chat.stream(Request(text="abc forever", max_new_tokens=300), cancel):
        if isinstance(item, Result):
            result = item
        else:
            seen.append(item)
            if len(seen) == 3:
                cancel.set()
    assert result.text == "".join(seen) == "rev" and result.usage.units_out == 3


def test_a_long_chat_is_trimmed_and_says_so(chat):
    history = tuple(Message(role, "x" * 60) for _ in range(6) for role in ("user", "assistant"))
    _, result = collect(chat, Request(text="q", history=history, max_new_tokens=50))
    assert result.notes and "oldest" in result.notes[0]


def test_a_killed_server_fails_the_request_in_flight_and_restarts_on_the_next(chat):
    first = chat.server.proc.pid
    with pytest.raises(ModelUnavailable, match="stopped while answering.*restarts"):
        for item in chat.stream(Request(text="abc forever", max_new_tokens=300)):
            if item == "r":  # mid-answer
                os.kill(chat.server.proc.pid, signal.SIGKILL)
                chat.server.proc.wait()
    _, result = collect(chat, Request(text="back"))
    assert result.text == "kcab" and chat.server.proc.pid != first


def test_the_request_in_flight_when_the_server_dies_gets_an_error_row_in_the_ledger(chat, settings):
    from tests.conftest import make_assistant

    assistant = make_assistant(settings, chat)
    first = chat.server.proc.pid
    outcome = None
    for item in assistant.handle(Request(text="abc forever", max_new_tokens=300)):
        if item == "r":  # mid-answer
            os.kill(chat.server.proc.pid, signal.SIGKILL)
            chat.server.proc.wait()
        elif not isinstance(item, str):
            outcome = item
    assert outcome.status != "ok" and "stopped while answering" in outcome.error
    row = assistant.ledger.get(outcome.request_id)
    assert row["status"] == outcome.status and "restarts on your next message" in row["error"]
    again = assistant.ask(Request(text="back"))
    assert again.status == "ok" and again.result.text == "kcab"
    assert chat.server.proc.pid != first


def test_a_server_that_never_becomes_ready_is_stopped_not_waited_for(monkeypatch):
    monkeypatch.setattr("models.text_llamacpp.START_TIMEOUT_S", 1.0)
    hung = [sys.executable, "-c", "import time; time.sleep(60)"]  # listens on nothing
    server = LlamaServer(Path("x.gguf"), 400, 8, 1, command=hung)
    with pytest.raises(ModelUnavailable, match="did not become ready within 1 s"):
        server.start()
    assert server.proc is None and not server.alive()


def test_unload_ends_the_server_process_and_a_late_request_says_so(chat):
    proc = chat.server.proc
    chat.unload()
    assert proc.poll() is not None and not chat.server.alive()
    with pytest.raises(ModelUnavailable, match="not loaded"):
        collect(chat, Request(text="hi"))
    assert not chat.server.alive()  # not started again behind the pool's back


def test_a_taken_port_is_named_and_nothing_hangs():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = LlamaServer(Path("x.gguf"), 400, 8, 1, port=port, command=[sys.executable, STUB])
        with pytest.raises(ModelUnavailable, match=f"port {port} is in use"):
            server.start()


def test_a_port_left_in_time_wait_by_the_last_server_is_free_for_the_next():
    from models.text_llamacpp import port_in_use

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as llama-server does
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    assert port_in_use(port)  # listening: taken
    served.close()  # the server closes first: its side of the port waits (TIME_WAIT)
    client.close()
    listener.close()
    assert not port_in_use(port)  # an unload then a load on the same port must not fail


def test_a_taken_port_is_not_mistaken_for_the_avx512_build_failing(monkeypatch, log):
    monkeypatch.setattr("models.text_llamacpp.native_server", lambda: (Path("llama"), ""))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = LlamaServer(Path("x.gguf"), 400, 8, 1, port=port)
        with pytest.raises(ModelUnavailable, match=f"port {port} is in use"):
            server.start()
        assert not server.native_failed  # once the port is free, the AVX-512 build serves


def test_a_server_that_exits_at_start_is_reported_with_its_reason():
    server = LlamaServer(
        Path("x.gguf"),
        400,
        8,
        1,
        command=[
            sys.executable,
            "-c",
            "import sys; print('bad model file', file=sys.stderr); sys.exit(2)",
        ],
    )
    with pytest.raises(ModelUnavailable, match="could not start: bad model file"):
        server.start()


def test_without_the_wheel_the_message_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # import fails
    monkeypatch.setattr("models.text_llamacpp.native_server", lambda: (None, "not installed"))
    with pytest.raises(ModelUnavailable, match="pip install xllamacpp"):
        LlamaServer(Path("x.gguf"), 400, 8, 1).start()


def native_chat(monkeypatch, log: Path, native: list[str]) -> LlamaCppChat:
    """A chat whose AVX-512 build runs ``native``; the portable build is the stub."""
    monkeypatch.setattr("models.text_llamacpp.native_server", lambda: (Path("llama-server"), ""))
    monkeypatch.setattr("models.text_llamacpp.server_command", lambda *args: native)
    stub = [sys.executable, STUB, "--log", str(log)]
    monkeypatch.setattr(LlamaServer, "_portable_command", lambda self: stub)
    server = LlamaServer(Path("stub.gguf"), 400, 8, 1)
    chat = LlamaCppChat(files=None, tokenizer=CharTokenizer(), server=server, context_window=400)
    chat.load()
    return chat


def test_the_avx512_build_serves_where_this_cpu_runs_it(monkeypatch, log):
    chat = native_chat(monkeypatch, log, [sys.executable, STUB, "--log", str(log)])
    try:
        _, result = collect(chat, Request(text="hi"))
        assert chat.server.runtime == NATIVE and result.text == "ih" and not result.notes
    finally:
        chat.unload()


def test_an_avx512_build_that_dies_at_start_hands_over_to_the_portable_one(monkeypatch, log):
    sigill = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]
    chat = native_chat(monkeypatch, log, sigill)
    try:
        _, result = collect(chat, Request(text="hi"))
        assert chat.server.runtime == PORTABLE and result.text == "ih"
        assert "killed by SIGILL" in result.notes[-1]
        assert PORTABLE in result.notes[-1] and NATIVE in result.notes[-1]
        os.kill(chat.server.proc.pid, signal.SIGKILL)  # a restart does not try it again
        chat.server.proc.wait()
        _, again = collect(chat, Request(text="again"))  # restarted: the portable build
        assert chat.server.runtime == PORTABLE and again.text == "niaga" and again.notes
    finally:
        chat.unload()


def test_the_native_binary_ends_with_the_process_that_supervises_it(tmp_path):
    import subprocess
    import time

    pidfile = tmp_path / "pid"
    child = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "models.llama_server", "--exec", sys.executable, "-c", child],
        cwd=Path(__file__).resolve().parents[1],
    )
    deadline = time.monotonic() + 30
    while not (pidfile.is_file() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int(pidfile.read_text())
    supervisor.terminate()  # what LlamaServer.stop does
    assert supervisor.wait(timeout=20) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the binary is gone too, not left resident


def test_the_avx512_build_is_used_only_where_the_cpu_has_every_feature_it_needs(tmp_path):
    from models.llama_native import NEEDS, cpu_flags, native_server, server_command

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nflags : fpu sse avx2 avx512f\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse", "avx2", "avx512f"}
    binary, why = native_server({"avx2", "avx512f"})
    assert binary is None and why  # not installed, or installed and this CPU lacks the rest
    if "not installed" not in why:
        assert "amx_int8" in why and "avx512f," not in why
        binary, why = native_server(set(NEEDS))
        assert binary is not None and binary.name == "llama-server" and why == ""
    command = server_command(Path("llama-server"), Path("m.gguf"), 4096, 8, 1, 2)
    flags = dict(zip(command[1::2], command[2::2], strict=False))
    assert flags["--model"] == "m.gguf" and flags["--host"] == "127.0.0.1"
    after = {flag: command[i + 1] for i, flag in enumerate(command[:-1])}
    assert after["--threads"] == "1" and after["--threads-batch"] == "2"
    assert (
        flags["--ctx-size"] == "4096" and flags["--parallel"] == "8" and "--kv-unified" in command
    )


class Named(Adapter):
    family, tasks = "text", ("text",)

    def __init__(self, name: str, fails: bool = False):
        self.name, self.fails, self.loads = name, fails, 0

    def load(self) -> None:
        self.loads += 1
        if self.fails:
            raise ModelUnavailable("llama.cpp could not start: port 7950 is in use.")


def test_the_pool_falls_back_to_the_next_runtime_and_says_why():
    adapters = {"fast": Named("fast", fails=True), "steady": Named("steady")}
    said = []
    pool = Pool(adapters.__getitem__, 1024, {}, fallbacks={"fast": "steady"}, log=said.append)
    with pool.lease("fast") as lease:
        assert lease.adapter.name == "steady" and lease.model == "steady"
        assert "port 7950 is in use" in lease.fallback_reason
    assert said and "fast could not start" in said[0] and "steady serves" in said[0]
    with pool.lease("fast") as lease:  # not retried at once: no second failed start
        assert lease.model == "steady" and adapters["fast"].loads == 1
    with pool.lease("steady") as lease:
        assert lease.fallback_reason == ""


def test_a_model_without_fallback_still_fails_clearly():
    pool = Pool(lambda m: Named(m, fails=True), 1024, {})
    with pytest.raises(ModelUnavailable, match="port 7950"):
        with pool.lease("fast"):
            pass


def test_the_route_card_and_the_ledger_name_the_model_that_answered(assistant):
    pool = assistant.pool
    pool.fallbacks = {"smollm2-135m-instruct-llamacpp": "smollm2-135m-instruct"}
    factory = pool.factory

    def broken(model_id: str):
        if model_id == "smollm2-135m-instruct-llamacpp":
            return Named(model_id, fails=True)
        return factory(model_id)

    pool.factory = broken
    outcome = assistant.ask(Request(text="hello", model="smollm2-135m-instruct-llamacpp"))
    assert outcome.status == "ok" and outcome.route.model == "smollm2-135m-instruct"
    assert "could not start (llama.cpp could not start: port 7950" in outcome.route.reason
    row = assistant.ledger.get(outcome.request_id)
    extra = json.loads(row["extra"])
    assert extra["fallback"]["asked"] == "smollm2-135m-instruct-llamacpp"


def test_catalog_ids_stay_and_name_the_wheel(monkeypatch, tmp_path):
    catalog = Catalog.load()
    for model_id, fallback in (
        ("smollm2-135m-instruct-llamacpp", "smollm2-135m-instruct"),
        ("qwen2.5-coder-0.5b-instruct-llamacpp", "qwen2.5-coder-0.5b-instruct"),
    ):
        entry = catalog.get(model_id)
        assert entry.backend == "llama.cpp" and entry.fallback == fallback
    monkeypatch.setattr("assistant.catalog.entries.module_dir", lambda name: None)
    usable, why = catalog.get("smollm2-135m-instruct-llamacpp").availability(tmp_path)
    assert not usable and "pip install xllamacpp" in why


def test_an_entry_without_pack_or_gguf_is_refused_clearly():
    from assistant.catalog.backends import build_adapter
    from assistant.catalog.entries import Entry
    from assistant.settings import Settings

    coder = Catalog.load().get("qwen2.5-coder-0.5b-instruct")
    bare = Entry(**{**coder.__dict__, "id": "mine", "backend": "llama.cpp", "source": {}})
    with pytest.raises(ModelUnavailable, match="source.gguf"):
        build_adapter(bare, Settings.from_env()).files()


def test_the_default_follows_what_bench_text_measured_here(tmp_path, monkeypatch):
    from assistant.flow.defaults import BENCH_TEXT_FILE, measured_text_default
    from assistant.settings import Settings

    settings = Settings(home=tmp_path)
    catalog = Catalog.load()
    assert measured_text_default(settings, catalog) is None  # no bench run: the catalog's
    (tmp_path / BENCH_TEXT_FILE).write_text('{"text_model": "smollm2-135m-instruct-llamacpp"}')
    monkeypatch.setattr("assistant.catalog.entries.is_installed", lambda pack: True)
    monkeypatch.setattr("assistant.catalog.entries.module_dir", lambda name: tmp_path)
    assert measured_text_default(settings, catalog) == "smollm2-135m-instruct-llamacpp"
    # Measured with spinning threads: it holds only while ASSISTANT_LLAMA_SPIN is on.
    spun = '{"text_model": "smollm2-135m-instruct-llamacpp", "llama_spin": true}'
    (tmp_path / BENCH_TEXT_FILE).write_text(spun)
    assert measured_text_default(settings, catalog) is None
    spinning = Settings(home=tmp_path, llama_spin=True)
    assert measured_text_default(spinning, catalog) == "smollm2-135m-instruct-llamacpp"
    # A winner that cannot run here (wheel gone) is not made the default.
    monkeypatch.setattr("assistant.catalog.entries.module_dir", lambda name: None)
    assert measured_text_default(settings, catalog) is None
    (tmp_path / BENCH_TEXT_FILE).write_text('{"text_model": "no-such-model"}')
    assert measured_text_default(settings, catalog) is None
    (tmp_path / BENCH_TEXT_FILE).write_text("not json")
    assert measured_text_default(settings, catalog) is None


def test_a_small_model_decodes_one_chat_on_one_thread_of_two_and_batches_on_both(
    tmp_path, monkeypatch
):
    from models.llama_native import SMALL_MODEL_BYTES, decode_threads

    small, big = tmp_path / "small.gguf", tmp_path / "big.gguf"
    small.write_bytes(b"\0" * 1000)
    with big.open("wb") as f:  # sparse: the size is what counts
        f.truncate(SMALL_MODEL_BYTES + 1)
    assert decode_threads(small, 2) == 1  # no barrier per op (llama_native's measurement)
    assert decode_threads(big, 2) == 2  # the memory-bound model reads with every core
    assert decode_threads(small, 8) == 8  # only 2 cores were measured
    monkeypatch.setattr("models.gguf_quant.fast_gguf", lambda path: path)
    chat = LlamaCppChat(files=lambda: (tmp_path, small), tokenizer=CharTokenizer())
    chat._ensure_running = lambda: None  # the settings, not a server
    chat.load()
    cores = os.cpu_count() or 1
    assert chat.server.threads == decode_threads(small, cores)
    assert chat.server.threads_batch == cores


def test_spinning_is_a_setting_that_decodes_on_every_core_with_a_bounded_spin(
    tmp_path, monkeypatch
):
    from models.llama_native import SPIN_COUNT, decode_threads

    small = tmp_path / "small.gguf"
    small.write_bytes(b"\0" * 1000)
    assert decode_threads(small, 2, spin=True) == 2
    # The adapter hands the setting to its server: every core decodes, and spins.
    monkeypatch.setattr("models.gguf_quant.fast_gguf", lambda path: path)
    chat = LlamaCppChat(files=lambda: (tmp_path, small), tokenizer=CharTokenizer(), spin=True)
    chat._ensure_running = lambda: None  # the settings, not a server
    chat.load()
    assert chat.server.spin and chat.server.threads == (os.cpu_count() or 1)
    from assistant.catalog.backends import build_adapter

    entry = Catalog.load().get("smollm2-135m-instruct-llamacpp")
    assert build_adapter(entry, Settings(home=tmp_path, llama_spin=True)).spin
    assert not build_adapter(entry, Settings(home=tmp_path)).spin
    assert Settings.from_env({}).llama_spin is False  # robust under load by default
    assert Settings.from_env({"ASSISTANT_LLAMA_SPIN": "on"}).llama_spin is True
    with pytest.raises(BadInput, match="ASSISTANT_LLAMA_SPIN"):
        Settings.from_env({"ASSISTANT_LLAMA_SPIN": "fast"})
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    seen = {}
    for spin in (False, True):
        env = tmp_path / f"env-{spin}.json"
        server = LlamaServer(
            small, 400, 8, 1, command=[sys.executable, STUB, "--env", str(env)], spin=spin
        )
        server.start()
        server.stop()
        told = json.loads(env.read_text())
        seen[spin] = {k: told.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    # Off: a thread sleeps at once at every barrier. On: it spins a bounded while first.
    assert seen[False] == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": None}
    assert seen[True] == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": SPIN_COUNT}
