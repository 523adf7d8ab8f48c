"""A small client of a Dagster webserver's GraphQL API (the API the UI uses): staleness, launching
runs of the code location's jobs, following them. Runs launched here are created by the webserver
from the loaded code location, so they carry its origin: the UI lists them under Jobs, Overview ›
Timeline and the asset pages, and can re-execute them. They go through the instance's run queue.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LOCATION = "medtrinity"
REPOSITORY = "__repository__"
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


class DagsterApiError(RuntimeError):
    """The webserver could not be reached or refused a request; the message says why."""


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None, timeout_s: float = 120.0) -> dict:
    """POST one GraphQL request to ``<url>/graphql``; transport and GraphQL errors raise DagsterApiError."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    req = urllib.request.Request(url.rstrip("/") + "/graphql", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            payload = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise DagsterApiError(f"GraphQL request to {url} failed: HTTP {exc.code}: {exc.read()[:2000].decode(errors='replace')}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DagsterApiError(f"GraphQL request to {url} failed: {exc}") from exc
    if payload.get("errors"):
        raise DagsterApiError(f"GraphQL errors from {url}: {json.dumps(payload['errors'])[:2000]}")
    return payload["data"]


LOCATION_QUERY = """{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } ... on PythonError { message } } }"""


def location_status(url: str, location: str = LOCATION) -> tuple[str, str]:
    """(load status, error message) of the code location: ('LOADED', ''), ('LOADING', ''), ('ERROR', msg)."""
    node = graphql(url, LOCATION_QUERY)["workspaceOrError"]
    if node["__typename"] != "Workspace":
        return "ERROR", node.get("message", node["__typename"])
    for entry in node["locationEntries"]:
        if entry["name"] == location:
            loaded = entry["locationOrLoadError"] or {}
            if loaded.get("__typename") == "PythonError":
                return "ERROR", loaded.get("message", "")
            return entry["loadStatus"], ""
    return "MISSING", f"no code location {location!r} in the webserver's workspace"


STALE_QUERY = """query ($key: AssetKeyInput!) { assetNodes(assetKeys: [$key]) { isPartitioned staleStatus } }"""
STALE_BY_PARTITION_QUERY = """query ($key: AssetKeyInput!, $partitions: [String!]!) { assetNodes(assetKeys: [$key]) {
  staleStatusByPartition(partitions: $partitions) } }"""


def stale_status(url: str, asset: str, partitions: Sequence[str] = ()) -> dict[str | None, str]:
    """Dagster's own staleness: FRESH, STALE or MISSING per partition (key None when unpartitioned)."""
    key = {"path": [asset]}
    if not partitions:
        nodes = graphql(url, STALE_QUERY, {"key": key})["assetNodes"]
        if not nodes:
            raise DagsterApiError(f"asset {asset!r} is not in the code location")
        if nodes[0]["isPartitioned"]:
            raise DagsterApiError(f"asset {asset!r} is partitioned: name the partitions")
        return {None: nodes[0]["staleStatus"]}
    nodes = graphql(url, STALE_BY_PARTITION_QUERY, {"key": key, "partitions": list(partitions)})["assetNodes"]
    if not nodes:
        raise DagsterApiError(f"asset {asset!r} is not in the code location")
    return dict(zip(partitions, nodes[0]["staleStatusByPartition"]))


LAUNCH_MUTATION = """mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename
  ... on LaunchRunSuccess { run { runId } }
  ... on RunConfigValidationInvalid { errors { message } }
  ... on Error { message }
} }"""


def partition_tags(partition: str | None, dimensions: Sequence[str] = ()) -> dict[str, str]:
    """Run tags naming a partition (and its dimensions for a multi-partition key 'a|b')."""
    if partition is None:
        return {}
    tags = {"dagster/partition": partition}
    if dimensions:
        for dim, value in zip(dimensions, partition.split("|")):
            tags[f"dagster/partition/{dim}"] = value
    return tags


@dataclass(frozen=True)
class RunSpec:
    """One run to launch: a job of the code location, a subset of its assets, a partition."""

    label: str
    job: str
    assets: tuple[str, ...]
    partition: str | None = None
    dimensions: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    run_config: Mapping[str, Any] = field(default_factory=dict)


def launch_run(url: str, spec: RunSpec) -> str:
    """Launch `spec` through the webserver (queued by the instance's run coordinator); the run id."""
    tags = {**spec.tags, **partition_tags(spec.partition, spec.dimensions)}
    params = {
        "selector": {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": spec.job,
            "assetSelection": [{"path": [a]} for a in spec.assets],
        },
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in sorted(tags.items())]},
        "runConfigData": dict(spec.run_config),
    }
    result = graphql(url, LAUNCH_MUTATION, {"params": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        detail = result.get("message") or json.dumps(result.get("errors") or result)[:1000]
        raise DagsterApiError(f"launching {spec.label}: {result['__typename']}: {detail}")
    return result["run"]["runId"]


RUNS_QUERY = """query ($ids: [String!]) { runsOrError(filter: {runIds: $ids}) { __typename
  ... on Runs { results { runId status startTime endTime stepStats { stepKey status startTime endTime } } }
  ... on PythonError { message } } }"""


@dataclass
class RunState:
    run_id: str
    status: str
    start: float | None
    end: float | None
    steps: dict[str, float]  # step key -> seconds

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def seconds(self) -> float:
        return (self.end - self.start) if self.start and self.end else 0.0


def run_states(url: str, run_ids: Sequence[str]) -> dict[str, RunState]:
    node = graphql(url, RUNS_QUERY, {"ids": list(run_ids)})["runsOrError"]
    if node["__typename"] != "Runs":
        raise DagsterApiError(node.get("message", node["__typename"]))
    out = {}
    for r in node["results"]:
        steps = {s["stepKey"]: (s["endTime"] or 0) - (s["startTime"] or 0) for s in r["stepStats"] if s["startTime"] and s["endTime"]}
        out[r["runId"]] = RunState(r["runId"], r["status"], r["startTime"], r["endTime"], steps)
    return out


LOGS_QUERY = """query ($id: ID!, $cursor: String) { logsForRun(runId: $id, afterCursor: $cursor) { __typename
  ... on EventConnection { cursor hasMore events { __typename
    ... on MessageEvent { message level stepKey }
    ... on ExecutionStepFailureEvent { error { message } }
    ... on RunFailureEvent { pipelineFailureError: error { message } } } }
  ... on PythonError { message } } }"""


def run_messages(url: str, run_id: str, cursor: str | None = None) -> tuple[list[dict], str | None]:
    """New log events of a run after `cursor` (message, level, failure errors) and the next cursor."""
    events: list[dict] = []
    while True:
        node = graphql(url, LOGS_QUERY, {"id": run_id, "cursor": cursor})["logsForRun"]
        if node["__typename"] != "EventConnection":
            return events, cursor
        events += node["events"]
        cursor = node["cursor"]
        if not node["hasMore"]:
            return events, cursor


def failure_messages(events: Sequence[dict]) -> list[str]:
    out = []
    for e in events:
        err = e.get("error") or e.get("pipelineFailureError")
        if err and err.get("message"):
            out.append(err["message"].strip())
    return out


def wait_for_location(url: str, timeout_s: float, alive: Any = None, poll_s: float = 0.5) -> None:
    """Until the code location is loaded; a load error or `alive()` turning False raises."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise DagsterApiError("the Dagster services exited while starting")
        try:
            status, message = location_status(url)
        except DagsterApiError as exc:
            status, message = "UNREACHABLE", str(exc)
        if status == "LOADED":
            return
        if status == "ERROR":
            raise DagsterApiError(f"code location {LOCATION} failed to load: {message}")
        last = message or status
        time.sleep(poll_s)
    raise DagsterApiError(f"code location {LOCATION} not loaded after {timeout_s:.0f}s ({last})")


OBSERVATIONS_QUERY = """query ($key: AssetKeyInput!, $partitions: [String!]) { assetOrError(assetKey: $key) { __typename
  ... on Asset { assetObservations(partitions: $partitions) { partition timestamp tags { key value } } } } }"""


def observed_versions(url: str, asset: str, partitions: Sequence[str]) -> dict[str, str]:
    """The data version of each partition's latest observation (partitions never observed are absent)."""
    node = graphql(url, OBSERVATIONS_QUERY, {"key": {"path": [asset]}, "partitions": list(partitions)})["assetOrError"]
    latest: dict[str, tuple[float, str]] = {}
    for obs in node.get("assetObservations") or []:
        version = next((t["value"] for t in obs["tags"] if t["key"] == "dagster/data_version"), None)
        stamp = float(obs["timestamp"])
        if version is not None and (obs["partition"] not in latest or stamp > latest[obs["partition"]][0]):
            latest[obs["partition"]] = (stamp, version)
    return {p: v for p, (_, v) in latest.items()}


def report_observation(url: str, asset: str, partition: str | None, data_version: str, timeout_s: float = 60.0) -> None:
    """Record a runless observation with a data version through the webserver's external-assets
    REST endpoint (``/report_asset_observation/<asset>``)."""
    body = json.dumps({"data_version": data_version, **({"partition": partition} if partition else {})}).encode()
    req = urllib.request.Request(
        f"{url.rstrip('/')}/report_asset_observation/{asset}", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        raise DagsterApiError(f"reporting {asset}[{partition}] to {url}: HTTP {exc.code} {exc.read()[:500]!r}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DagsterApiError(f"reporting {asset}[{partition}] to {url}: {exc}") from exc


def report_changed_versions(url: str, asset: str, versions: Mapping[str, str]) -> list[str]:
    """Report the partitions of `versions` whose data version differs from the current one; returns them."""
    current = observed_versions(url, asset, list(versions))
    changed = [p for p, v in sorted(versions.items()) if current.get(p) != v]
    for partition in changed:
        report_observation(url, asset, partition, versions[partition])
    return changed
