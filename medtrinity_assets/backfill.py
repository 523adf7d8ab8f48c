"""Per-source backfills: a real Dagster asset backfill, submitted to the instance (or to a webserver's
GraphQL API), so the daemon runs it under the run queue's limits and the UI shows it.

A source backfill targets ``source_manifest[<source>]`` and every dataset asset (images ... triplets)
for ``<source>|<shard>`` of the chosen shards (default: all). The daemon first runs the manifest,
then one run per shard (every asset keeps the default backfill policy: one partition per run; see
docs/scaling.md). Runs carry the backfill's tags: ``dagster/backfill`` (added by Dagster, capped
per backfill by the instance's tag limit), ``medtrinity/source``, ``medtrinity/trigger`` and the
tags passed in (`medtrinity backfill` passes the dataset run tags -- ``medtrinity/gpu`` when
MEDTRINITY_DEVICE is cuda/auto, MEDTRINITY_RUN_TAGS -- and its --tag options).

    plan = plan_source_backfill(CATALOG, "pydicom_dicom", shards=["00", "01"])
    backfill_id = submit_to_instance(DagsterInstance.get(), plan, defs.resolve_asset_graph())
    backfill_id = submit_to_webserver("http://dagster:3000", plan)      # same backfill, over HTTP
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medtrinity_assets.catalog import Catalog

MANIFEST_ASSET = "source_manifest"
DATASET_ASSETS = ("images", "roi_masks", "coarse_captions", "retrieved_knowledge", "caption_batches", "triplets")
TERMINAL_STATUSES = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")
SUCCESS_STATUSES = ("COMPLETED", "COMPLETED_SUCCESS")

# All steps of a shard run are sequential (images -> ... -> triplets): one process per run loads the
# code location and the models once, instead of once per step with the multiprocess executor.
IN_PROCESS = "in_process"
DEFAULT_EXECUTOR = "default"


class BackfillError(ValueError):
    """A backfill that cannot be planned or submitted; the message says why."""


@dataclass(frozen=True)
class BackfillPlan:
    """What one source backfill targets, and the tags / run config of its runs."""

    source: str
    shards: tuple[str, ...]
    all_shards: tuple[str, ...]
    include_manifest: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)
    run_config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        scope = "all shards" if self.shards == self.all_shards else "shards " + ",".join(self.shards)
        return f"{self.source} ({scope})"

    @property
    def partition_keys(self) -> list[str]:
        return [f"{self.source}|{s}" for s in self.shards]

    @property
    def asset_names(self) -> list[str]:
        return ([MANIFEST_ASSET] if self.include_manifest else []) + list(DATASET_ASSETS)

    def shard_ranges(self) -> list[tuple[str, str]]:
        """The selected shards as contiguous (first, last) runs of the catalog's shard order."""
        return [(f"{self.source}|{a}", f"{self.source}|{b}") for a, b in contiguous_runs(self.shards, self.all_shards)]

    def selectors(self) -> list[Any]:
        """Dagster PartitionsByAssetSelector per asset (what the UI's backfill dialog produces)."""
        from dagster import AssetKey
        from dagster._core.definitions.selector import PartitionRangeSelector, PartitionsByAssetSelector, PartitionsSelector

        def select(asset: str, ranges: Sequence[tuple[str, str]]) -> Any:
            return PartitionsByAssetSelector(
                asset_key=AssetKey(asset), partitions=PartitionsSelector(ranges=[PartitionRangeSelector(a, b) for a, b in ranges])
            )

        out = [select(MANIFEST_ASSET, [(self.source, self.source)])] if self.include_manifest else []
        return out + [select(asset, self.shard_ranges()) for asset in DATASET_ASSETS]

    def graphql_params(self) -> dict:
        """`LaunchBackfillParams` for the webserver's `launchPartitionBackfill` mutation."""
        return {
            "partitionsByAssets": [s.to_graphql_input() for s in self.selectors()],
            "tags": [{"key": k, "value": v} for k, v in sorted(self.tags.items())],
            "title": self.title,
            "description": f"medtrinity backfill --source {self.source} --shards {','.join(self.shards)}",
            **({"runConfigData": dict(self.run_config)} if self.run_config else {}),
        }


def contiguous_runs(selected: Sequence[str], ordered: Sequence[str]) -> list[tuple[str, str]]:
    """Group `selected` (a subset of `ordered`) into maximal runs of consecutive items of `ordered`."""
    index = {k: i for i, k in enumerate(ordered)}
    runs: list[list[str]] = []
    for key in sorted(set(selected), key=index.__getitem__):
        if runs and index[key] == index[runs[-1][1]] + 1:
            runs[-1][1] = key
        else:
            runs.append([key, key])
    return [(a, b) for a, b in runs]


def parse_tags(pairs: Sequence[str]) -> dict[str, str]:
    """`KEY=VALUE` strings to a dict; a pair without '=' is an error."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BackfillError(f"tag {pair!r} is not KEY=VALUE")
        out[key.strip()] = value
    return out


def executor_run_config(executor: str, executor_name: str) -> dict:
    """Run config selecting the in-process executor on the code location's executor (or none)."""
    if executor == DEFAULT_EXECUTOR:
        return {}
    if executor != IN_PROCESS:
        raise BackfillError(f"executor {executor!r}: use {IN_PROCESS!r} or {DEFAULT_EXECUTOR!r}")
    if executor_name == "multi_or_in_process_executor":
        return {"execution": {"config": {"in_process": {}}}}
    if executor_name == "in_process":
        return {}
    raise BackfillError(f"the code location's executor is {executor_name!r}: pass --executor {DEFAULT_EXECUTOR}")


def plan_source_backfill(
    catalog: Catalog,
    source: str,
    shards: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
    include_manifest: bool = True,
) -> BackfillPlan:
    """Validate the source and shards against the catalog and describe the backfill."""
    if source not in catalog.names:
        raise BackfillError(f"unknown source {source!r} (catalog has: {', '.join(catalog.names)})")
    all_shards = tuple(catalog.shard_keys)
    requested = set(shards) if shards else set(all_shards)
    unknown = sorted(requested - set(all_shards))
    if unknown:
        raise BackfillError(f"unknown shards {', '.join(unknown)} (the catalog has {all_shards[0]}..{all_shards[-1]})")
    chosen = tuple(s for s in all_shards if s in requested)
    all_tags = {"medtrinity/source": source, "medtrinity/trigger": "cli_backfill", **(tags or {})}
    return BackfillPlan(source, chosen, all_shards, include_manifest, all_tags, dict(run_config or {}))


def submit_to_instance(instance: Any, plan: BackfillPlan, asset_graph: Any) -> str:
    """Add the backfill to the instance's run storage (as the webserver does); the daemon picks it up."""
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    from dagster import AssetKey

    missing = [a for a in plan.asset_names if not asset_graph.has(AssetKey(a))]
    if missing:
        raise BackfillError(f"assets not in the code location: {', '.join(missing)}")
    backfill = PartitionBackfill.from_partitions_by_assets(
        backfill_id=make_new_backfill_id(),
        asset_graph=asset_graph,
        backfill_timestamp=time.time(),
        tags=dict(plan.tags),
        dynamic_partitions_store=instance,
        partitions_by_assets=plan.selectors(),
        title=plan.title,
        description=plan.graphql_params()["description"],
        run_config=dict(plan.run_config) or None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


LAUNCH_MUTATION = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
    ... on PythonError { message stack }
  }
}"""

STATUS_QUERY = """
query BackfillStatus($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions title tags { key value } runs { runId status tags { key value } } }
    ... on Error { message }
  }
}"""


def graphql(url: str, query: str, variables: Mapping[str, Any], timeout_s: float = 60.0) -> dict:
    """POST one GraphQL request to a Dagster webserver (``<url>/graphql``); errors raise BackfillError."""
    body = json.dumps({"query": query, "variables": dict(variables)}).encode()
    req = urllib.request.Request(url.rstrip("/") + "/graphql", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            payload = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise BackfillError(f"GraphQL request to {url} failed: {exc}") from exc
    if payload.get("errors"):
        raise BackfillError(f"GraphQL errors from {url}: {payload['errors']}")
    return payload["data"]


def submit_to_webserver(url: str, plan: BackfillPlan, timeout_s: float = 60.0) -> str:
    """Launch the backfill through the webserver's `launchPartitionBackfill` mutation (public API)."""
    result = graphql(url, LAUNCH_MUTATION, {"params": plan.graphql_params()}, timeout_s)["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise BackfillError(f"{result['__typename']}: {result.get('message', '')}")
    return result["backfillId"]


def backfill_status(instance: Any | None, backfill_id: str, webserver: str = "") -> str:
    """The backfill's status name (REQUESTED, COMPLETED_SUCCESS, ...), from the webserver or the instance."""
    if webserver:
        node = graphql(webserver, STATUS_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
        if node["__typename"] != "PartitionBackfill":
            raise BackfillError(f"backfill {backfill_id}: {node.get('message', node['__typename'])}")
        return node["status"]
    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise BackfillError(f"no backfill {backfill_id} on this instance")
    return backfill.status.value


def wait_for_backfill(instance: Any | None, backfill_id: str, timeout_s: float, webserver: str = "", poll_s: float = 5.0) -> str:
    """Poll until the backfill reaches a terminal status (returned) or the timeout passes (BackfillError)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = backfill_status(instance, backfill_id, webserver)
        if status in TERMINAL_STATUSES:
            return status
        if time.monotonic() > deadline:
            raise BackfillError(f"backfill {backfill_id} still {status} after {timeout_s:.0f}s (is the daemon running?)")
        time.sleep(poll_s)
