"""A Postgres-backed Dagster instance: a real PostgreSQL server (started by the fixture on
127.0.0.1, on a free port, in a temporary data directory) holds run, event-log and schedule
storage while a partition of the medtrinity graph is materialised.

The fixture needs the PostgreSQL server binaries (`apt-get install -y postgresql`; CI installs
them in .ci/setup.d/postgres.sh). It runs the server as the `postgres` user when the tests run as
root (PostgreSQL refuses to run as root), else as the current user.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found in $PG_BIN_DIR, /usr/lib/postgresql/*/bin "
    "or PATH: install them with `apt-get install -y postgresql` (Debian/Ubuntu; CI runs "
    ".ci/setup.d/postgres.sh), `dnf install postgresql-server` or `brew install postgresql`"
)


def postgres_bin_dir() -> Path | None:
    """The newest directory holding initdb and pg_ctl, or None."""
    candidates = [Path(os.environ["PG_BIN_DIR"])] if os.environ.get("PG_BIN_DIR") else []

    def version(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    return next((c for c in candidates if (c / "initdb").is_file() and (c / "pg_ctl").is_file()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    bin_dir: Path
    base: Path
    port: int
    password: str
    user: str = "postgres"

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    def _as_owner(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args

    def _run(self, args: list[str], timeout: float = 120) -> None:
        proc = subprocess.run(self._as_owner(args), capture_output=True, text=True, timeout=timeout, cwd=self.base)
        if proc.returncode != 0:
            log = (self.base / "server.log").read_text() if (self.base / "server.log").exists() else ""
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}\n{log[-2000:]}")

    def start(self) -> "PostgresServer":
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            for p in [self.base, pwfile]:
                os.chown(p, pg.pw_uid, pg.pw_gid)
        self._run([str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.user, "--pwfile", str(pwfile),
                   "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"])
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.base} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.base / "server.log"), "-w", "-t", "60", "-o", options, "start"])
        return self

    def stop(self) -> None:
        try:
            self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"], timeout=60)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def connect(self, db: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password, dbname=db)

    def create_database(self, name: str) -> str:
        conn = self.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return name

    def query(self, db: str, sql: str) -> list[tuple]:
        conn = self.connect(db)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            conn.close()


def start_postgres() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(INSTALL_HINT)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root needs a `postgres` system user for the server (created by the postgresql package)")
    base = Path(tempfile.mkdtemp(prefix="medtrinity-pg-"))
    server = PostgresServer(bin_dir=bin_dir, base=base, port=free_port(), password=secrets.token_hex(12))
    try:
        server.start()
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    yield from start_postgres()


def write_postgres_instance(dagster_home: Path, server: PostgresServer, db: str) -> Path:
    """DAGSTER_HOME/dagster.yaml: the repo's queue, pool and retry settings, storage in Postgres."""
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["storage"] = {
        "postgres": {
            "postgres_db": {
                "username": server.user,
                "password": server.password,
                "hostname": "127.0.0.1",
                "port": server.port,
                "db_name": db,
            }
        }
    }
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_materialise_a_partition_on_a_postgres_instance(postgres_server, tmp_path):
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    from helpers import QUIET_CONSOLE
    from medtrinity_assets.definitions import defs
    from medtrinity_assets.partitions import dataset_shard_key

    db = postgres_server.create_database("dagster_materialise")
    home = tmp_path / "dagster_home"
    write_postgres_instance(home, postgres_server, db)
    instance = DagsterInstance.from_config(str(home))
    try:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)

        source, shard = "sam_med2d_demo", "00"
        for job, key in [("knowledge_index_job", "pubmedqa"), ("dataset_shard_job", dataset_shard_key(source, shard))]:
            result = defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=key, run_config=QUIET_CONSOLE)
            assert result.success, job

        runs = instance.get_runs()
        assert len(runs) == 2 and all(r.status == DagsterRunStatus.SUCCESS for r in runs)
        for asset, partition in [("source_manifest", f"{source}|{shard}"), ("images", f"{source}|{shard}"), ("triplets", f"{source}|{shard}")]:
            records = instance.fetch_materializations(AssetKey(asset), limit=10).records
            assert [r.partition_key for r in records] == [partition], asset
        assert instance.get_materialized_partitions(AssetKey("triplets")) == {f"{source}|{shard}"}
        # the knowledge_store pool (one index writer at a time) was claimed through the instance's concurrency tables
        assert "knowledge_store" in instance.event_log_storage.get_concurrency_keys()
    finally:
        instance.dispose()

    # the same facts, read straight from the database: the instance really wrote to Postgres
    run_ids = {r[0] for r in postgres_server.query(db, "SELECT run_id FROM runs")}
    assert run_ids == {r.run_id for r in runs}
    n_mat = postgres_server.query(db, "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")[0][0]
    assert n_mat == 8  # one knowledge corpus + the seven assets of one shard's chain
    partitions = {r[0] for r in postgres_server.query(db, "SELECT DISTINCT partition FROM event_logs WHERE partition IS NOT NULL")}
    assert {"pubmedqa", f"{source}|{shard}"} <= partitions


def test_schedule_state_lives_in_postgres(postgres_server, tmp_path):
    """`dagster schedule start` (as a user runs it) records the schedule's state in Postgres."""
    from dagster import DagsterInstance
    from dagster._core.scheduler.instigation import InstigatorStatus, InstigatorType

    db = postgres_server.create_database("dagster_schedules")
    home = tmp_path / "dagster_home"
    write_postgres_instance(home, postgres_server, db)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    cmd = [sys.executable, "-m", "dagster", "schedule", "start", "torchxrayvision_cxr_backfill", "-m", "medtrinity_assets.definitions"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]

    instance = DagsterInstance.from_config(str(home))
    try:
        states = instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
        running = {s.instigator_name for s in states if s.status == InstigatorStatus.RUNNING}
        assert running == {"torchxrayvision_cxr_backfill"}
    finally:
        instance.dispose()
    rows = postgres_server.query(db, "SELECT count(*) FROM instigators")
    assert rows[0][0] >= 1
