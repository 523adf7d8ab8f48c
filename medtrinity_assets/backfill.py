"""Per-source backfills: a real Dagster asset backfill, launched through a webserver's GraphQL API
(`launchPartitionBackfill`, what the UI's backfill dialog sends), so the daemon runs it under the run
queue's limits and the UI shows it. `medtrinity backfill` uses the webserver given by --webserver
(MEDTRINITY_WEBSERVER_URL), else starts one on $DAGSTER_HOME's instance for the command's duration.

A source backfill targets the dataset chain (source_manifest ... triplets) of the chosen shards
(default: all). By default only what is missing or stale counts, by Dagster's own account: the
shards' file fingerprints are first reported as `source_files` observations, then each shard is
targeted from the first asset of its chain that is missing or stale, a FRESH asset whose manifest
storage no longer holds counting as missing (medtrinity_assets.stored; `--all` targets every asset
of every chosen shard). The daemon runs one run per shard. Runs carry the backfill's tags:
``dagster/backfill`` (added by Dagster, capped per backfill by the instance's tag limit),
``medtrinity/source``, ``medtrinity/trigger`` and the tags passed in (`medtrinity backfill` passes
the dataset run tags -- ``medtrinity/gpu`` when models run on a GPU, MEDTRINITY_RUN_TAGS -- and its
--tag options).

    stale = {a: storage_status(url, a, partitions, stored_from_settings()) for a in DATASET_ASSETS}
    plan = plan_source_backfill(CATALOG, "pydicom_dicom", shards=["00", "01"], stale=stale)
    backfill_id = submit_backfill("http://dagster:3000", plan)
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medtrinity_assets.catalog import Catalog
from medtrinity_assets.dagster_client import DagsterApiError, graphql
from medtrinity_assets.defs.names import DATASET_ASSETS

TERMINAL_STATUSES = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")
SUCCESS_STATUSES = ("COMPLETED", "COMPLETED_SUCCESS")


class BackfillError(ValueError):
    """A backfill that cannot be planned or submitted; the message says why."""


@dataclass(frozen=True)
class BackfillPlan:
    """What one source backfill targets (asset -> partitions), and the tags of its runs."""

    source: str
    partitions_by_asset: Mapping[str, tuple[str, ...]]
    all_shards: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=dict)
    run_config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def partition_keys(self) -> list[str]:
        keys = {p for parts in self.partitions_by_asset.values() for p in parts}
        return [f"{self.source}|{s}" for s in self.all_shards if f"{self.source}|{s}" in keys]

    @property
    def shards(self) -> tuple[str, ...]:
        return tuple(p.split("|", 1)[1] for p in self.partition_keys)

    @property
    def is_empty(self) -> bool:
        return not self.partition_keys

    @property
    def title(self) -> str:
        scope = "all shards" if self.shards == self.all_shards else "shards " + ",".join(self.shards)
        return f"{self.source} ({scope})"

    def asset_ranges(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """(asset, contiguous (first, last) partition ranges in the catalog's shard order) per targeted asset."""
        order = [f"{self.source}|{s}" for s in self.all_shards]
        return [(asset, contiguous_runs(parts, order)) for asset, parts in self.partitions_by_asset.items() if parts]

    def graphql_params(self) -> dict:
        """`LaunchBackfillParams` for the webserver's `launchPartitionBackfill` mutation."""
        return {
            "partitionsByAssets": [
                {"assetKey": {"path": [asset]}, "partitions": {"ranges": [{"start": a, "end": b} for a, b in ranges]}}
                for asset, ranges in self.asset_ranges()
            ],
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


def chosen_shards(catalog: Catalog, source: str, shards: Sequence[str] | None) -> tuple[str, ...]:
    if source not in catalog.names:
        raise BackfillError(f"unknown source {source!r} (catalog has: {', '.join(catalog.names)})")
    all_shards = tuple(catalog.shard_keys)
    requested = set(shards) if shards else set(all_shards)
    unknown = sorted(requested - set(all_shards))
    if unknown:
        raise BackfillError(f"unknown shards {', '.join(unknown)} (the catalog has {all_shards[0]}..{all_shards[-1]})")
    return tuple(s for s in all_shards if s in requested)


def plan_source_backfill(
    catalog: Catalog,
    source: str,
    shards: Sequence[str] | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
    stale: Mapping[str, Mapping[str, str]] | None = None,
) -> BackfillPlan:
    """Validate the source and shards against the catalog and describe the backfill. With `stale`
    (asset -> partition -> FRESH/STALE/MISSING), a shard is targeted from the first asset of its chain
    that is not FRESH, and not at all when its whole chain is fresh."""
    chosen = chosen_shards(catalog, source, shards)
    targeted: dict[str, list[str]] = {asset: [] for asset in DATASET_ASSETS}
    for shard in chosen:
        partition = f"{source}|{shard}"
        first = 0
        if stale is not None:
            first = next((i for i, a in enumerate(DATASET_ASSETS) if stale[a].get(partition, "MISSING") != "FRESH"), len(DATASET_ASSETS))
        for asset in DATASET_ASSETS[first:]:
            targeted[asset].append(partition)
    all_tags = {"medtrinity/source": source, "medtrinity/trigger": "cli_backfill", **(tags or {})}
    by_asset = {a: tuple(p) for a, p in targeted.items() if p}
    return BackfillPlan(source, by_asset, tuple(catalog.shard_keys), all_tags, dict(run_config or {}))


LAUNCH_MUTATION = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""

STATUS_QUERY = """
query BackfillStatus($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions title }
    ... on Error { message }
  }
}"""


def submit_backfill(url: str, plan: BackfillPlan) -> str:
    """Launch the backfill through the webserver's `launchPartitionBackfill` mutation."""
    if plan.is_empty:
        raise BackfillError(f"{plan.source}: nothing to backfill")
    try:
        result = graphql(url, LAUNCH_MUTATION, {"params": plan.graphql_params()})["launchPartitionBackfill"]
    except DagsterApiError as exc:
        raise BackfillError(str(exc)) from exc
    if result["__typename"] != "LaunchBackfillSuccess":
        raise BackfillError(f"{result['__typename']}: {result.get('message', '')}")
    return result["backfillId"]


def backfill_status(url: str, backfill_id: str) -> str:
    """The backfill's status name (REQUESTED, COMPLETED_SUCCESS, ...)."""
    try:
        node = graphql(url, STATUS_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
    except DagsterApiError as exc:
        raise BackfillError(str(exc)) from exc
    if node["__typename"] != "PartitionBackfill":
        raise BackfillError(f"backfill {backfill_id}: {node.get('message', node['__typename'])}")
    return node["status"]


def wait_for_backfill(url: str, backfill_id: str, timeout_s: float, poll_s: float = 5.0) -> str:
    """Poll until the backfill reaches a terminal status (returned) or the timeout passes (BackfillError)."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = backfill_status(url, backfill_id)
        if status in TERMINAL_STATUSES:
            return status
        if time.monotonic() > deadline:
            raise BackfillError(f"backfill {backfill_id} still {status} after {timeout_s:.0f}s (is the daemon running?)")
        time.sleep(poll_s)
