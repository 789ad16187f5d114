"""A multi-replica set-up on loopback: model endpoint, replicas, nginx (and Chroma).

What docs/scaling.md describes, started as processes on 127.0.0.1 for
tests/test_scale.py and ``bench scale``:

- the model endpoint: a second instance of this app serving /v1 with fake
  models (tests/scale_worker.py), so no weights are needed;
- replicas: ``python -m assistant serve``, exactly as deployed, whose
  catalog points every model they use at the endpoint. With a database
  (``database_url``) each has an ASSISTANT_HOME of its own, as on separate
  machines, and they share only what such machines share: the database
  (ledger, chats, documents' registry), the Chroma server and one folder for
  uploads and kept documents (ASSISTANT_SHARED_DIR). Without one they share
  a single ASSISTANT_HOME and its SQLite files, which only one machine can;
- nginx with deploy/nginx/assistant.conf, the file a deployment copies;
- optionally a Chroma server (``chroma run``) for the vectors.

Every process logs to a file in the stack's folder, named in any error.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx" / "assistant.conf"
# Ports tried, first free first: ASSISTANT_STACK_PORTS="7850-7869" (a helper's range).
PORTS = os.environ.get("ASSISTANT_STACK_PORTS", "7850-7869")
TEXT_MODEL = "lab-text"
VISION_MODEL = "lab-vision"
EMBEDDER = "all-minilm-l6-v2"  # the built-in embedder's id, so the endpoint's replaces it
TEXT_PRICE = {"usd_per_1m_input_tokens": 0.1, "usd_per_1m_output_tokens": 0.2}


def nginx_missing() -> str | None:
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        return None
    return "nginx is not installed: apt-get install -y nginx"


def free_port(taken: set[int]) -> int:
    low, high = (int(p) for p in PORTS.split("-"))
    for port in range(low, high + 1):
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError(f"no free port in {PORTS} (ASSISTANT_STACK_PORTS)")


def catalog(endpoint: str) -> dict:
    """The replicas' catalog: their chat, vision and embedding models are the endpoint's."""

    def entry(model_id: str, family: str, served: str, default_for: list, prices: dict) -> dict:
        return {
            "id": model_id,
            "name": f"{family} on the endpoint {endpoint}",
            "family": family,
            "tasks": default_for,
            "backend": "openai",
            "default_for": default_for,
            "source": {"endpoint": endpoint, "model": served, "timeout_s": 10},
            "license": "Apache-2.0",
            "params_m": 0,
            "size_mb": 0,
            "memory_mb": 0,
            "built": True,
            "context_window": 8192,
            "prices": {**prices, "source": "a loopback test", "date": "2026-12"},
        }

    return {
        "models": [
            # The names the endpoint serves them by: its own catalog's ids.
            entry(TEXT_MODEL, "text", "smollm2-135m-instruct", ["text"], TEXT_PRICE),
            entry(EMBEDDER, "embed", EMBEDDER, ["rag"], {"usd_per_1m_input_tokens": 0.01}),
            # This app's /v1 reads a picture (an image_url part) when asked with "auto".
            entry(VISION_MODEL, "vision", "auto", ["vision"], TEXT_PRICE),
        ]
    }


@dataclass
class Process:
    name: str
    port: int
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    folder: Path
    processes: dict[str, Process] = field(default_factory=dict)
    taken: set[int] = field(default_factory=set)
    database_url: str | None = None  # the replicas' ASSISTANT_DATABASE_URL, when they share one

    def __enter__(self) -> Stack:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc) -> None:
        for name in list(self.processes):
            self.kill(name)

    # -- the parts ---------------------------------------------------------

    def endpoint(self) -> Process:
        port = free_port(self.taken)
        env = {"ASSISTANT_HOME": str(self.folder / "endpoint-home"), "ASSISTANT_DEVICE": "cpu"}
        args = [sys.executable, "-m", "tests.scale_worker", str(port)]
        return self._start("endpoint", port, args, env)

    def chroma(self) -> Process:
        port = free_port(self.taken)
        chroma = Path(sys.executable).with_name("chroma")
        args = [str(chroma), "run", "--path", str(self.folder / "chroma"), "--port", str(port)]
        return self._start("chroma", port, args, {"ANONYMIZED_TELEMETRY": "False"})

    def replica(self, name: str, endpoint: Process, env: dict[str, str] | None = None) -> Process:
        """``python -m assistant serve``, its models on ``endpoint`` (homes: see the top)."""
        if self.database_url:
            home = self.folder / f"home-{name}"
            shared = {"ASSISTANT_DATABASE_URL": self.database_url}
            shared["ASSISTANT_SHARED_DIR"] = str(self.folder / "shared")
        else:
            home, shared = self.folder / "shared-home", {}
        home.mkdir(parents=True, exist_ok=True)
        (home / "catalog.json").write_text(json.dumps(catalog(endpoint.url + "/v1"), indent=1))
        port = free_port(self.taken)
        settings = {
            "ASSISTANT_HOME": str(home),
            "ASSISTANT_REPLICA_ID": name,  # the ledger's started rows say "a:PID:START"
            "GRADIO_SERVER_PORT": str(port),
            "ASSISTANT_TEXT_MODEL": TEXT_MODEL,
            "ASSISTANT_GROUNDED_MODEL": TEXT_MODEL,
            "ASSISTANT_DEVICE": "cpu",
            **shared,
            **(env or {}),
        }
        return self._start(name, port, [sys.executable, "-m", "assistant", "serve"], settings)

    def nginx(self, replicas: list[Process]) -> Process:
        """nginx with deploy/nginx/assistant.conf in front of ``replicas``."""
        port = free_port(self.taken)
        folder = self.folder / "nginx"
        folder.mkdir(exist_ok=True)
        servers = " ".join(
            f"server 127.0.0.1:{r.port} max_fails=1 fail_timeout=10s;" for r in replicas
        )
        site = Template(NGINX_CONF.read_text()).safe_substitute(
            LISTEN_PORT=f"127.0.0.1:{port}", REPLICA_SERVERS=servers
        )
        (folder / "assistant.conf").write_text(site)
        # What Debian's /etc/nginx/nginx.conf gives the drop-in, in a folder of our own.
        temps = " ".join(
            f"{kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi")
        )
        (folder / "nginx.conf").write_text(
            f"""pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 512; }}
http {{
    access_log {folder / "access.log"};
    {temps}
    uwsgi_temp_path {folder / "uwsgi"}; scgi_temp_path {folder / "scgi"};
    include {folder / "assistant.conf"};
}}
"""
        )
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        args = [binary, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"]
        return self._start("nginx", port, args, {})

    # -- running them ------------------------------------------------------

    def _start(self, name: str, port: int, args: list[str], env: dict[str, str]) -> Process:
        log = self.folder / f"{name}.log"
        process = Process(name, port, args, env, log)
        self.processes[name] = process
        self.restart(name)
        return process

    def restart(self, name: str) -> None:
        """(Re)start a process with its own arguments, on its own port."""
        process = self.processes[name]
        environ = {**os.environ, "PYTHONUNBUFFERED": "1", **process.env}
        with open(process.log, "ab") as log:
            process.popen = subprocess.Popen(
                process.args,
                cwd=ROOT,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # killed as a group: chroma and nginx have children
            )

    def wait(self, *names: str, timeout_s: float = 120.0) -> None:
        """Until each named process accepts connections on its port."""
        deadline = time.monotonic() + timeout_s
        for name in names:
            process = self.processes[name]
            while True:
                if process.popen.poll() is not None:
                    raise RuntimeError(f"{name} exited; see {process.log}:\n{_tail(process.log)}")
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", process.port)) == 0:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start; see {process.log}")
                time.sleep(0.2)

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash: nothing of the process gets to clean up."""
        process = self.processes[name]
        if process.popen is not None and process.popen.poll() is None:
            os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait(10)


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
