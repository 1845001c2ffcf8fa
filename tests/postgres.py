"""A real PostgreSQL for tests, on a unix socket in a temp folder: `pgserver`'s bundled binaries (pip), else Debian's
`postgresql` (initdb/pg_ctl). Each test gets a fresh database copied from a template MLflow has already migrated
(PostgreSQL copies a template database in well under a second; migrating a new one costs seconds)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

TEMPLATE = "mlflow_template"


class PostgresUnavailable(RuntimeError):
    """Neither pgserver nor Debian's postgresql could start a server here; the message says why for each."""


class Postgres:
    """One PostgreSQL server; `database()` makes a fresh database and returns its `postgresql://` URI."""

    def __init__(self, uri_of: Any, stop: Any, how: str) -> None:
        self._uri_of, self._stop, self.how = uri_of, stop, how

    def uri(self, database: str = "postgres") -> str:
        return self._uri_of(database)

    def sql(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.uri(), autocommit=True) as connection:
            connection.execute(statement)

    def migrate_template(self) -> None:
        """MLflow's tables in `TEMPLATE`, made in a process of its own so no pooled connection keeps the template busy
        (PostgreSQL copies a database only while nobody is connected to it)."""
        self.sql(f"CREATE DATABASE {TEMPLATE}")
        code = "import sys; from mlflow.tracking import MlflowClient; MlflowClient(sys.argv[1]).search_experiments()"
        subprocess.run([sys.executable, "-c", code, self.uri(TEMPLATE)], check=True, capture_output=True, timeout=300)

    def database(self, template: str | None = TEMPLATE) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        self.sql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return self.uri(name)

    def stop(self) -> None:
        self._stop()


def start_postgres(folder: Path) -> Postgres:
    """pgserver first, then Debian's binaries; `PostgresUnavailable` with both reasons if neither starts."""
    try:
        import psycopg  # noqa: F401 - the driver MLflow's `postgresql://` URIs use (SQLAlchemy 2.1)
    except ImportError as exc:
        raise PostgresUnavailable(f"{exc}; install the driver: pip install -e '.[postgres]'") from exc
    reasons = []
    for start in (_with_pgserver, _with_debian):
        try:
            return start(folder)
        except Exception as exc:  # noqa: BLE001 - collected into the skip reason
            reasons.append(f"{start.__name__[6:]}: {type(exc).__name__}: {str(exc).strip()[:300]}")
    raise PostgresUnavailable("no PostgreSQL could start here (" + "; ".join(reasons) + ")")


def _with_pgserver(folder: Path) -> Postgres:
    """`pgserver` runs its bundled PostgreSQL as the current user, or as a `pgserver` system user it creates when run
    as root (PostgreSQL refuses to run as root)."""
    import pgserver

    server = pgserver.get_server(folder / "pgdata", cleanup_mode="stop")

    def stop() -> None:
        """A fast shutdown (SIGINT: open sessions end) before pgserver's own cleanup, whose `pg_ctl stop` fails
        here as root and then waits on a smart shutdown."""
        pid = server.get_pid()
        if pid is not None:
            os.kill(pid, signal.SIGINT)
            for _ in range(300):
                if not _alive(pid):
                    break
                time.sleep(0.1)
        server.cleanup()

    return Postgres(server.get_uri, stop, "pgserver")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _with_debian(folder: Path) -> Postgres:
    """initdb and pg_ctl from PATH or /usr/lib/postgresql/<version>/bin; as root, run as the `postgres` user."""
    found = shutil.which("pg_ctl") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)),
                                           None)
    if found is None:
        raise FileNotFoundError("no pg_ctl on PATH or in /usr/lib/postgresql/*/bin")
    prefix: list[str] = []
    if os.geteuid() == 0:  # pytest's folders are root's alone: the server gets one of its own in /tmp
        import pwd
        import tempfile

        account = pwd.getpwnam("postgres")
        prefix, folder = ["runuser", "-u", "postgres", "--"], Path(tempfile.mkdtemp(prefix="orchestrator-pg-"))
        os.chown(folder, account.pw_uid, account.pw_gid)
    bin_dir, data, sock = Path(found).resolve().parent, folder / "pgdata", folder / "sock"

    def run(*command: str) -> None:
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    run("mkdir", "-p", str(sock))
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "utf8")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "postgres.log"), "-o",
        f"-k {sock} -c listen_addresses=''", "start")

    def stop() -> None:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop")
        if prefix:
            shutil.rmtree(folder, ignore_errors=True)

    return Postgres(lambda db: f"postgresql://postgres@/{db}?host={sock}", stop, "debian")
