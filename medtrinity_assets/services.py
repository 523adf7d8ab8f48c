"""The Dagster services a CLI command needs: a running webserver given by URL, or `dagster dev`
(webserver, daemon and code server on $DAGSTER_HOME's instance) started for the command's duration
and stopped after it, its output kept in $DAGSTER_HOME/logs/."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from medtrinity_assets import settings
from medtrinity_assets.dagster_client import DagsterApiError, location_status, wait_for_location


def ensure_dagster_home() -> Path:
    """Use $DAGSTER_HOME as configured (its dagster.yaml is never touched, e.g. a Postgres one),
    or <repo>/.dagster_home kept in sync with the repo's dagster.yaml."""
    preset = os.environ.get("DAGSTER_HOME")
    home = Path(preset or settings.REPO_ROOT / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    src = settings.REPO_ROOT / "dagster.yaml"
    dst = home / "dagster.yaml"
    if src.is_file() and (not dst.exists() or (not preset and dst.read_bytes() != src.read_bytes())):
        shutil.copyfile(src, dst)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DagsterServices:
    """A webserver for the command: `url` if given (checked), else one of its own on a free local port
    on $DAGSTER_HOME's instance -- `dagster dev` (webserver, daemon, code server) when `daemon`, the
    webserver alone otherwise (a deployment's daemon runs what it submits) -- stopped, its whole
    process group, on exit."""

    def __init__(self, url: str = "", daemon: bool = True, startup_timeout_s: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self.daemon = daemon
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def start(self) -> str:
        if self.url:
            location_status(self.url)  # reachable, or DagsterApiError
            return self.url
        home = ensure_dagster_home()
        logs = home / "medtrinity-logs"
        logs.mkdir(exist_ok=True)
        self.log_path = logs / ("dagster-dev.log" if self.daemon else "dagster-webserver.log")
        port = free_port()
        workspace = str(settings.REPO_ROOT / "workspace.yaml")
        program = ["dagster", "dev"] if self.daemon else ["dagster_webserver"]
        cmd = [sys.executable, "-m", *program, "-w", workspace, "-h", "127.0.0.1", "-p", str(port)]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def wait_ready(self) -> None:
        try:
            wait_for_location(self.url, self.startup_timeout_s, alive=self.alive)
        except DagsterApiError as exc:
            raise DagsterApiError(f"{exc}\n{self.log_tail()}") from None

    def alive(self) -> bool:
        return self.proc is None or self.proc.poll() is None

    def log_tail(self, n: int = 3000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return f"--- {self.log_path} (end) ---\n" + self.log_path.read_text(errors="replace")[-n:]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the started services so far: every live process of their session
        plus the children each has reaped (run workers, finished servers). 0 for a given URL."""
        if self.proc is None:
            return 0.0
        return session_cpu_seconds(self.proc.pid)

    def stop(self, grace_s: float = 1.5) -> None:
        """SIGTERM to the process group of the services, SIGKILL to what is left after `grace_s`
        (`dagster dev` takes ~10 s to wind down its idle daemon threads; the commands stop it once
        every run they launched has finished, and SQLite rolls back anything half-written)."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # leader of its own session
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 30.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and _group_alive(pgid):
                time.sleep(0.2)
                self.proc.poll()
            if not _group_alive(pgid):
                break
        self.proc.wait(timeout=30)
        self.proc = None

    def __enter__(self) -> "DagsterServices":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def session_cpu_seconds(sid: int) -> float:
    """utime + stime + cutime + cstime of the processes of session `sid` (Linux /proc; 0 elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid:  # fields after the name: state ppid pgrp session ...
            total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / ticks
