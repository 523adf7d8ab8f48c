"""A CLI-launched backfill of one demo source completes under a running daemon on a Postgres
instance, and the Dagster GraphQL API shows it.

The deployment is the Docker Compose topology on 127.0.0.1: a code server (`dagster code-server
start`, the `code` service), `dagster-webserver` and `dagster-daemon run` loading the code location
from it over gRPC, instance storage in a real PostgreSQL (fixture from test_postgres_instance.py),
the repo's run queue settings (max 4 runs, 2 per backfill). Runs are launched by the code server
(DefaultRunLauncher), dequeued by the daemon's QueuedRunCoordinator.

Two backfills, one per way `medtrinity backfill` reaches the deployment:
- the whole of `pydicom_dicom` (4 shards), through a webserver the command starts on the instance
  ($DAGSTER_HOME) for its duration;
- shard 00 of `stardist_dsb2018`, through the deployment's webserver (--webserver).
Both use the `launchPartitionBackfill` mutation; a second backfill of the same source finds every
shard up to date (Dagster's staleness) and submits nothing. The knowledge store is left empty
(retrieval then returns no passages; the runs still succeed).

Also here: the backfill plan and CLI input errors, and the declarative automation conditions that
the daemon's `dataset_refresh_sensor` evaluates (with Dagster's `evaluate_automation_conditions`).
"""

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
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from test_postgres_instance import free_port, start_postgres, write_postgres_instance

REPO = Path(__file__).resolve().parents[1]
WHOLE_SOURCE = "pydicom_dicom"
ONE_SHARD = ("stardist_dsb2018", "00")
SHARDS = 4  # the bundled catalog with 4 shards, so the per-backfill run limit (2) has runs to hold back


def four_shard_catalog(root: Path) -> Path:
    bundled = REPO / "data" / "catalog.yaml"
    raw = yaml.safe_load(bundled.read_text())
    raw["shard_count"] = SHARDS
    for source in raw["sources"]:
        source["root"] = str((bundled.parent / source["root"]).resolve())
    path = root / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
DATASET_ASSETS = ["source_manifest", "images", "roi_masks", "coarse_captions", "retrieved_knowledge", "caption_batches", "triplets"]
DEADLINE_S = 540  # generous: the daemon runs 4 + 1 runs on 2 shared cores


@pytest.fixture(scope="module")
def postgres_server():
    yield from start_postgres()


def entry_point(name: str, module: str) -> list[str]:
    """The console script next to this interpreter, else `python -m module`."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.is_file() else [sys.executable, "-m", module]


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log: Path

    def tail(self, n: int = 4000) -> str:
        return f"--- {self.name} ---\n" + (self.log.read_text(errors="replace")[-n:] if self.log.exists() else "")

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM to the process group; SIGKILL if it is still there after `grace_s`."""
        if self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(pgid, signal.SIGKILL)  # children too (run workers), even if the leader exited
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)


def start_service(name: str, args: list[str], env: dict, logs: Path) -> Service:
    log = logs / f"{name}.log"
    fh = open(log, "wb")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    fh.close()
    return Service(name, proc, log)


def wait_for_port(port: int, service: Service, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.proc.returncode}\n{service.tail()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"{service.name} not listening on {port} after {timeout_s}s\n{service.tail()}")


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        payload = json.loads(resp.read())
    assert not payload.get("errors"), payload["errors"]
    return payload["data"]


@dataclass
class Deployment:
    url: str
    env: dict
    services: list[Service]

    def logs(self) -> str:
        return "\n".join(s.tail() for s in self.services)


LOCATION_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


@pytest.fixture(scope="module")
def deployment(postgres_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("deployment")
    home, logs = root / "dagster_home", root / "logs"
    logs.mkdir()
    write_postgres_instance(home, postgres_server, postgres_server.create_database("dagster_backfills"))
    grpc_port, web_port = free_port(), free_port()
    workspace = root / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [{"grpc_server": {"host": "127.0.0.1", "port": grpc_port, "location_name": "medtrinity"}}]}))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MEDTRINITY_HOME": str(root / "medtrinity"),
        "MEDTRINITY_KNOWLEDGE_DIR": str(root / "medtrinity" / "knowledge"),
        "MEDTRINITY_CATALOG": str(four_shard_catalog(root)),
        "PYTHONUNBUFFERED": "1",
    }
    for var in ["MEDTRINITY_STORAGE", "MEDTRINITY_S3_ENDPOINT_URL", "MEDTRINITY_DEVICE", "MEDTRINITY_RUN_TAGS"]:
        env.pop(var, None)
    # create the (empty) keyword index once, so concurrent runs never race to create it
    from medtrinity_resources.knowledge_store import KnowledgeStore

    assert KnowledgeStore(persist_dir=env["MEDTRINITY_KNOWLEDGE_DIR"]).corpora() == []

    services: list[Service] = []
    try:
        code = start_service(
            "code-server",
            [*entry_point("dagster", "dagster"), "code-server", "start", "-m", "medtrinity_assets.definitions",
             "--location-name", "medtrinity", "-h", "127.0.0.1", "-p", str(grpc_port), "--use-python-environment-entry-point"],
            env, logs,
        )
        services.append(code)
        wait_for_port(grpc_port, code, 180)
        web = start_service(
            "webserver", [*entry_point("dagster-webserver", "dagster_webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(web_port)], env, logs
        )
        services.append(web)
        services.append(start_service("daemon", [*entry_point("dagster-daemon", "dagster._daemon"), "run", "-w", str(workspace)], env, logs))
        wait_for_port(web_port, web, 180)
        url = f"http://127.0.0.1:{web_port}"
        deadline = time.monotonic() + 180
        while True:
            entries = graphql(url, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
            loaded = [e for e in entries if e["loadStatus"] == "LOADED"]
            if loaded:
                assert loaded[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
                break
            assert time.monotonic() < deadline, (entries, "\n".join(s.tail() for s in services))
            time.sleep(1)
        yield Deployment(url, env, services)
    finally:
        for service in reversed(services):  # daemon first (no new runs), then webserver, code server
            service.stop()


def cli_backfill(dep: Deployment, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "medtrinity_assets.cli", "backfill", *args], cwd=REPO, env=dep.env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def launch_cli_backfill(dep: Deployment, *args: str) -> str:
    proc = cli_backfill(dep, *args)
    found = re.search(r"^backfill (\w+): ", proc.stdout, re.M)
    assert found, proc.stdout
    return found.group(1)


BACKFILL_QUERY = """query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PythonError { message }
  ... on PartitionBackfill { id status isAssetBackfill title numPartitions
    tags { key value }
    assetSelection { path }
    runs { runId status startTime endTime tags { key value } assetSelection { path } } } } }"""

MATERIALISED_QUERY = """query ($key: AssetKeyInput!, $partitions: [String!]) { assetOrError(assetKey: $key) {
  ... on Asset { assetMaterializations(partitions: $partitions) { partition runId } } } }"""

LIST_QUERY = """{ partitionBackfillsOrError(limit: 20) { ... on PartitionBackfills { results { id status } } } }"""


def wait_until_done(dep: Deployment, ids: list[str]) -> dict[str, dict]:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        found = {i: graphql(dep.url, BACKFILL_QUERY, {"id": i})["partitionBackfillOrError"] for i in ids}
        if all(b.get("status") in ("COMPLETED_SUCCESS", "COMPLETED_FAILED", "COMPLETED", "FAILED", "CANCELED") for b in found.values()):
            return found
        for service in dep.services:
            assert service.proc.poll() is None, f"{service.name} died\n{dep.logs()}"
        if time.monotonic() > deadline:
            pytest.fail(f"backfills not done after {DEADLINE_S}s: {json.dumps(found)[:3000]}\n{dep.logs()}")
        time.sleep(3)


def tags_of(node: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in node["tags"]}


def max_overlap(runs: list[dict]) -> int:
    """Most runs in progress at the same moment (from their start/end times)."""
    edges = sorted([(r["startTime"], 1) for r in runs] + [(r["endTime"], -1) for r in runs], key=lambda e: (e[0], e[1]))
    level = best = 0
    for _, step in edges:
        level += step
        best = max(best, level)
    return best


def materialised_by(dep: Deployment, asset: str, partitions: list[str]) -> dict[str, set[str]]:
    mats = graphql(dep.url, MATERIALISED_QUERY, {"key": {"path": [asset]}, "partitions": partitions})["assetOrError"]["assetMaterializations"]
    out: dict[str, set[str]] = {}
    for m in mats:
        out.setdefault(m["partition"], set()).add(m["runId"])
    return out


def test_cli_backfills_complete_under_the_daemon_and_show_in_graphql(deployment):
    dep = deployment
    whole_id = launch_cli_backfill(dep, "--source", WHOLE_SOURCE)
    shard_id = launch_cli_backfill(dep, "--source", ONE_SHARD[0], "--shards", ONE_SHARD[1], "--webserver", dep.url)
    listed = {b["id"] for b in graphql(dep.url, LIST_QUERY)["partitionBackfillsOrError"]["results"]}
    assert {whole_id, shard_id} <= listed

    done = wait_until_done(dep, [whole_id, shard_id])
    shards = [f"{WHOLE_SOURCE}|{s:02d}" for s in range(SHARDS)]
    expected = {whole_id: (WHOLE_SOURCE, shards), shard_id: (ONE_SHARD[0], [f"{ONE_SHARD[0]}|{ONE_SHARD[1]}"])}
    for backfill_id, (source, partitions) in expected.items():
        b = done[backfill_id]
        assert b["status"] == "COMPLETED_SUCCESS", (b, dep.logs())
        assert b["isAssetBackfill"]
        assert {"medtrinity/source": source, "medtrinity/trigger": "cli_backfill"}.items() <= tags_of(b).items()
        assert {p["path"][0] for p in b["assetSelection"]} == set(DATASET_ASSETS)
        runs = b["runs"]
        assert runs and all(r["status"] == "SUCCESS" for r in runs), runs
        for r in runs:
            assert tags_of(r)["dagster/backfill"] == backfill_id and tags_of(r)["medtrinity/source"] == source
        # one run per shard partition holding the whole chain (the shard's manifest first)
        by_partition = {tags_of(r)["dagster/partition"]: r for r in runs}
        assert sorted(by_partition) == sorted(partitions) and len(runs) == len(partitions)
        for partition in partitions:
            assert {p["path"][0] for p in by_partition[partition]["assetSelection"]} == set(DATASET_ASSETS)
        # every targeted partition of every dataset asset was materialised by this backfill's runs
        run_ids = {r["runId"] for r in runs}
        for asset in DATASET_ASSETS:
            got = materialised_by(dep, asset, partitions)
            assert set(got) == set(partitions) and all(ids & run_ids for ids in got.values()), (asset, got)

    # the queue's per-backfill tag limit (2) held for the 4-run backfill
    assert max_overlap(done[whole_id]["runs"]) <= 2

    # the backfill's runs belong to the code location (the UI lists them under the job and can re-execute them)
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.from_config(dep.env["DAGSTER_HOME"]) as instance:
        records = instance.get_run_records(filters=RunsFilter(tags={"dagster/backfill": whole_id}))
        assert len(records) == 4
        for record in records:
            origin = record.dagster_run.remote_job_origin
            assert origin is not None and origin.location_name == "medtrinity", record.dagster_run.run_id

    # nothing changed: a second backfill of the source finds every shard up to date and submits nothing
    again = cli_backfill(dep, "--source", WHOLE_SOURCE, "--webserver", dep.url)
    assert "every chosen shard is up to date" in again.stdout, again.stdout

    # the triplets are on storage where the runs wrote them
    triplets = Path(dep.env["MEDTRINITY_HOME"]) / "dataset" / "manifests" / "triplets" / WHOLE_SOURCE
    assert sorted(p.name for p in triplets.glob("*.parquet")) == [f"{s:02d}.parquet" for s in range(SHARDS)]


def test_backfill_plan_targets_one_source_and_rejects_bad_input(capsys):
    from medtrinity_assets.backfill import contiguous_runs, parse_tags, plan_source_backfill
    from medtrinity_assets.cli import main
    from medtrinity_assets.defs.context import CATALOG as BUNDLED
    from medtrinity_assets.defs.names import DATASET_ASSETS as NAMES

    CATALOG = BUNDLED.model_copy(update={"shard_count": 4})  # the planner is tested on four shards

    assert list(NAMES) == DATASET_ASSETS
    plan = plan_source_backfill(CATALOG, WHOLE_SOURCE, shards=["03", "00", "01"], tags={"k": "v"})
    assert plan.shards == ("00", "01", "03")
    ranges = [(f"{WHOLE_SOURCE}|00", f"{WHOLE_SOURCE}|01"), (f"{WHOLE_SOURCE}|03",) * 2]
    assert plan.asset_ranges() == [(a, ranges) for a in DATASET_ASSETS]
    params = plan.graphql_params()
    assert [p["assetKey"]["path"][0] for p in params["partitionsByAssets"]] == DATASET_ASSETS
    assert params["partitionsByAssets"][0]["partitions"] == {"ranges": [{"start": a, "end": b} for a, b in ranges]}
    assert {"key": "k", "value": "v"} in params["tags"] and {"key": "medtrinity/source", "value": WHOLE_SOURCE} in params["tags"]
    whole = plan_source_backfill(CATALOG, WHOLE_SOURCE)
    assert whole.asset_ranges()[0][1] == [(f"{WHOLE_SOURCE}|{CATALOG.shard_keys[0]}", f"{WHOLE_SOURCE}|{CATALOG.shard_keys[-1]}")]
    assert contiguous_runs(["05", "01", "02", "04"], [f"{i:02d}" for i in range(8)]) == [("01", "02"), ("04", "05")]
    assert parse_tags(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    # Dagster's staleness decides where each shard's chain starts; a fresh shard is left out
    fresh = {f"{WHOLE_SOURCE}|{s}": "FRESH" for s in CATALOG.shard_keys}
    stale = {a: dict(fresh) for a in DATASET_ASSETS}
    stale["caption_batches"][f"{WHOLE_SOURCE}|01"] = "STALE"
    stale["images"][f"{WHOLE_SOURCE}|02"] = "MISSING"
    partial = plan_source_backfill(CATALOG, WHOLE_SOURCE, stale=stale)
    assert partial.shards == ("01", "02")
    assert dict(partial.partitions_by_asset) == {
        "images": (f"{WHOLE_SOURCE}|02",), "roi_masks": (f"{WHOLE_SOURCE}|02",), "coarse_captions": (f"{WHOLE_SOURCE}|02",),
        "retrieved_knowledge": (f"{WHOLE_SOURCE}|02",), "caption_batches": (f"{WHOLE_SOURCE}|01", f"{WHOLE_SOURCE}|02"),
        "triplets": (f"{WHOLE_SOURCE}|01", f"{WHOLE_SOURCE}|02"),
    }
    assert plan_source_backfill(CATALOG, WHOLE_SOURCE, stale={a: dict(fresh) for a in DATASET_ASSETS}).is_empty

    for args, message in [
        (["--source", "no_such_source"], "unknown source 'no_such_source'"),
        (["--source", WHOLE_SOURCE, "--shards", "00,99"], "unknown shards 99"),
        (["--source", WHOLE_SOURCE, "--tag", "novalue"], "is not KEY=VALUE"),
        (["--source", WHOLE_SOURCE, "--webserver", f"http://127.0.0.1:{free_port()}"], "GraphQL request to http://127.0.0.1:"),
    ]:
        assert main(["backfill", *args]) == 2, args
        assert message in capsys.readouterr().err, args


# -- declarative automation, evaluated as the daemon's dataset_refresh_sensor does ----------------


def as_definitions(assets):
    """AssetsDefinitions for Dagster's stale-status test helper (external AssetSpecs wrapped)."""
    from dagster import AssetsDefinition, AssetSpec

    return [AssetsDefinition(specs=[a]) if isinstance(a, AssetSpec) else a for a in assets]


def test_automation_refreshes_only_what_an_upstream_change_affects(tmp_path):
    """A re-indexed knowledge corpus re-runs retrieval, captions and triplets of the partitions that
    exist; a new prompt/model version re-runs only caption batches and triplets, and marks the caption
    batches stale."""
    from dagster import AssetKey, AssetMaterialization, DagsterInstance, Definitions, evaluate_automation_conditions
    from dagster._core.definitions.data_version import StaleStatus
    from dagster._utils.test.data_versions import get_stale_status_resolver  # what the UI's stale badges use

    from helpers import QUIET_CONSOLE
    from medtrinity_assets.definitions import ASSETS, build_resources, defs, versioned
    from medtrinity_assets.defs.automation import REFRESHED_ASSETS, dataset_refresh_sensor, with_automation
    from medtrinity_assets.defs.context import CORPUS_PARTITIONS
    from medtrinity_assets.defs.versions import caption_config
    from medtrinity_assets.partitions import dataset_shard_key

    assert dataset_refresh_sensor.name in {s.name for s in defs.sensors}
    assert caption_config("openai", "llava-med") == caption_config("openai", "llava-med") != caption_config("openai", "other")
    resources = build_resources()

    source, shard = "pydicom_dicom", "00"
    partition = f"{source}|{shard}"
    instance = DagsterInstance.local_temp(tempdir=str(tmp_path))
    try:
        for corpus in CORPUS_PARTITIONS.get_partition_keys():  # the index exists (built elsewhere)
            instance.report_runless_asset_event(AssetMaterialization("knowledge_index", partition=corpus))
        key = dataset_shard_key(source, shard)
        assert defs.resolve_job_def("dataset_shard_job").execute_in_process(instance=instance, partition_key=key, run_config=QUIET_CONSOLE).success

        first = evaluate_automation_conditions(defs, instance)
        assert first.total_requested == 0  # the shard run built the whole chain: nothing to refresh

        instance.report_runless_asset_event(AssetMaterialization("knowledge_index", partition="medquad"))
        reindexed = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
        requested = {k: reindexed.get_requested_partitions(AssetKey(k)) for k in REFRESHED_ASSETS + ("images",)}
        assert requested == {
            "roi_masks": set(), "coarse_captions": set(), "images": set(),
            "retrieved_knowledge": {partition}, "caption_batches": {partition}, "triplets": {partition},
        }, requested
        again = evaluate_automation_conditions(defs, instance, cursor=reindexed.cursor)
        assert again.total_requested == 0  # handled: not requested twice for the same change

        new_model_assets = with_automation(versioned(ASSETS, resources, caption=caption_config("openai", "some-served-model")))
        new_model = Definitions(assets=new_model_assets, resources=resources)
        changed = evaluate_automation_conditions(new_model, instance, cursor=again.cursor)
        requested = {k: changed.get_requested_partitions(AssetKey(k)) for k in REFRESHED_ASSETS}
        assert requested == {
            "roi_masks": set(), "coarse_captions": set(), "retrieved_knowledge": set(),
            "caption_batches": {partition}, "triplets": {partition},
        }, requested

        stale = get_stale_status_resolver(instance, as_definitions(new_model_assets))
        assert stale.get_status(AssetKey("caption_batches"), partition) == StaleStatus.STALE
        # (Dagster marks only the asset whose code version changed; triplets follow via the automation)
        for fresh in ["images", "roi_masks", "coarse_captions", "retrieved_knowledge"]:
            assert stale.get_status(AssetKey(fresh), partition) == StaleStatus.FRESH, fresh
        unchanged = get_stale_status_resolver(instance, as_definitions(with_automation(versioned(ASSETS, resources))))
        assert unchanged.get_status(AssetKey("caption_batches"), partition) == StaleStatus.FRESH
    finally:
        instance.dispose()
