"""A throwaway PostgreSQL cluster for tests, from Debian's binaries (no server needed beforehand).

    with cluster(port=5440) as admin_url:          # initdb + pg_ctl start in a temp folder
        url = fresh_database(admin_url)            # CREATE DATABASE t_<random>: one per test
        ...  ASSISTANT_DATABASE_URL=url ...
        drop_database(admin_url, url)

The cluster listens on 127.0.0.1 only, trusts local connections (it holds
nothing but test rows), and skips fsync: it is deleted when the block ends.
PostgreSQL refuses to run as root, so as root it runs as the `postgres`
user (Debian's package creates it), else as `nobody`.

Other tests (the multi-replica integration test) import this module; the
`pg_admin_url` fixture in tests/conftest.py starts one cluster per session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PORT_ENV = "ASSISTANT_TEST_PG_PORT"  # a fixed port (a helper's own range); unset: a free one
INITDB_OPTIONS = ("-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl (PATH first, then Debian's versioned folders)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version)
    return versions[-1].parent if versions else None


def missing() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    if binaries() is None:
        return "PostgreSQL's initdb and pg_ctl are not installed: apt-get install postgresql"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install -r requirements.txt"
    return None


@contextmanager
def cluster(port: int | None = None) -> Iterator[str]:
    """Start a new cluster on 127.0.0.1:``port``; yield its admin URL; stop and delete it."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError(missing())
    port = port or int(os.environ.get(PORT_ENV) or 0) or _free_port()
    folder = Path(tempfile.mkdtemp(prefix="assistant-pg-"))
    data, log = folder / "data", folder / "log"
    runner = _runner(folder)

    def run(*args, check: bool = True) -> None:
        # From the cluster's folder: the postgres user may not enter the caller's.
        command = [*runner, *map(str, args)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=folder)
        if check and done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}{server_log}"
            )

    try:
        run(bin_dir / "initdb", "-D", data, *INITDB_OPTIONS)
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += " -c full_page_writes=off -c max_connections=200"
        run(bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "start")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            run(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(admin_url: str) -> str:
    """A new empty database in the cluster; its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def drop_database(admin_url: str, url: str) -> None:
    """Drop a database made by fresh_database, closing whatever still holds it."""
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _runner(folder: Path) -> list[str]:
    # initdb and postgres refuse root; the folder must belong to whoever runs them.
    if os.geteuid() != 0:
        return []
    user = "postgres" if _exists("postgres") else "nobody"
    entry = pwd.getpwnam(user)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    return ["runuser", "-u", user, "--"]


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _version(initdb: Path) -> float:
    try:
        return float(initdb.parent.parent.name)
    except ValueError:
        return 0.0
