"""A real `mlflow server` on 127.0.0.1 for tests: started, stopped and started again on the same port and database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# A server starts in ~7 s here (its workers import MLflow); a fresh SQLite database would add ~7 s of migrations,
# so tests hand it a copy of the pre-migrated template.
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """`mlflow server` over a SQLite file in `folder` (or another store); `stop()` takes it down with its workers,
    `start()` brings it back on the same port and database."""

    def __init__(self, folder: Path, port: int | None = None, backend_uri: str | None = None,
                 args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        """`backend_uri`: its store (default the SQLite file `folder/mlflow.db`, e.g. `postgresql://...`); `args` and
        `env`: more of the server's options and environment (`--app-name basic-auth` and its settings)."""
        self.folder = folder
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.backend_uri = backend_uri or f"sqlite:///{folder / 'mlflow.db'}"
        self.args, self.env = args, env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> MlflowServer:
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", "1", "--backend-store-uri", self.backend_uri,
                   "--artifacts-destination", str(self.folder / "artifacts"), *self.args]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **self.env}
        log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}; see {self.folder}/server.log")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"mlflow server at {self.uri} not healthy after {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """SIGTERM the server's process group (it runs uvicorn workers), SIGKILL what is left after 10 s."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None
        self._wait_port_free()

    def _wait_port_free(self) -> None:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)
