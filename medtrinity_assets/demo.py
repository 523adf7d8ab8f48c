"""`medtrinity demo` and `medtrinity release`: runs of the code location's jobs, launched through a
Dagster webserver (their own `dagster dev`, or a running one), so they belong to the code location.

The demo materialises only what is missing or stale by Dagster's own account: it reports each
source shard's file fingerprint as a `source_files` observation (a new data version only where
files changed), asks the webserver for the stale status of every partition (code versions and data
versions), counts a FRESH partition whose output storage no longer holds as missing
(medtrinity_assets.stored), and launches one run per (source, shard) starting at the first asset of
the chain that is missing or stale. Knowledge corpora, the retrieval evaluation, the cross-source reports and the
demo release follow the same rule.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from medtrinity_assets.dagster_client import (
    DagsterApiError,
    RunSpec,
    failure_messages,
    graphql,
    launch_run,
    run_messages,
    run_states,
)
from medtrinity_assets.defs.names import DATASET_ASSETS, RELEASE_ASSETS, REPORT_ASSETS
from medtrinity_assets.defs.progress import PROGRESS_PREFIX, duration
from medtrinity_assets.stored import Stored, storage_status

DIMENSIONS = ("dataset", "shard")
POLL_S = 1.0


@dataclass
class Outcome:
    spec: RunSpec
    run_id: str
    status: str = "QUEUED"
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.status == "SUCCESS"


class Runner:
    """Launches runs through the webserver and follows them, printing one line per finished run
    ('[done/total]'), the progress lines the runs log, and why a run failed."""

    def __init__(self, url: str, echo: Callable[[str], None] = print, poll_s: float = POLL_S) -> None:
        self.url, self.echo, self.poll_s = url, echo, poll_s
        self.outcomes: list[Outcome] = []

    def run(self, specs: Sequence[RunSpec], follow_logs: bool = False) -> list[Outcome]:
        launched = [Outcome(spec, launch_run(self.url, spec)) for spec in specs]
        self.outcomes += launched
        cursors: dict[str, str | None] = {o.run_id: None for o in launched}
        pending = {o.run_id: o for o in launched}
        done = 0
        width = len(str(len(launched)))
        while pending:
            time.sleep(self.poll_s)
            states = run_states(self.url, list(pending))
            for run_id, outcome in list(pending.items()):
                state = states.get(run_id)
                if follow_logs or (state and state.finished and state.status != "SUCCESS"):
                    events, cursors[run_id] = run_messages(self.url, run_id, cursors[run_id])
                    self._print_progress(events)
                    outcome.errors += failure_messages(events)
                if state is None or not state.finished:
                    continue
                outcome.status, outcome.seconds, outcome.steps = state.status, state.seconds, state.steps
                done += 1
                mark = "ok" if outcome.success else state.status
                self.echo(f"  [{done:>{width}}/{len(launched)}] {outcome.spec.label:<44} {mark:>8} {outcome.seconds:7.1f}s")
                for message in outcome.errors[:3]:
                    self.echo(f"      {message.splitlines()[0][:300]}")
                del pending[run_id]
        return launched

    def _print_progress(self, events: Sequence[dict]) -> None:
        for e in events:
            message = e.get("message") or ""
            if message.startswith(PROGRESS_PREFIX):
                self.echo(f"      {message[len(PROGRESS_PREFIX):]}")

    def stage_seconds(self) -> dict[str, float]:
        totals: Counter[str] = Counter()
        for o in self.outcomes:
            for step, seconds in o.steps.items():
                totals[step] += seconds
        return dict(totals)


PARTITIONS_QUERY = """query ($key: AssetKeyInput!) { assetNodes(assetKeys: [$key]) { partitionKeys } }"""


def partition_keys(url: str, asset: str) -> list[str]:
    nodes = graphql(url, PARTITIONS_QUERY, {"key": {"path": [asset]}})["assetNodes"]
    return list(nodes[0]["partitionKeys"]) if nodes else []


def not_fresh(url: str, asset: str, partitions: Sequence[str] = (), stored: Stored | None = None) -> dict[str | None, str]:
    """Partitions of `asset` (None when unpartitioned) that are MISSING or STALE, with that status."""
    return {p: s for p, s in storage_status(url, asset, partitions, stored).items() if s != "FRESH"}


def shard_specs(url: str, partitions: Sequence[str], trigger: str, stored: Stored | None = None) -> tuple[list[RunSpec], Counter[str]]:
    """One run per shard partition with anything missing or stale: the chain from its first such asset."""
    status = {asset: storage_status(url, asset, partitions, stored) for asset in DATASET_ASSETS}
    specs, counts = [], Counter()
    for partition in partitions:
        first = next((i for i, asset in enumerate(DATASET_ASSETS) if status[asset][partition] != "FRESH"), None)
        if first is None:
            counts["FRESH"] += 1
            continue
        counts[status[DATASET_ASSETS[first]][partition]] += 1
        source = partition.split("|")[0]
        specs.append(
            RunSpec(
                label=partition if first == 0 else f"{partition} (from {DATASET_ASSETS[first]})",
                job="dataset_shard_job",
                assets=DATASET_ASSETS[first:],
                partition=partition,
                dimensions=DIMENSIONS,
                tags={"medtrinity/source": source, "medtrinity/trigger": trigger},
            )
        )
    return specs, counts


def knowledge_specs(url: str, trigger: str, stored: Stored | None = None) -> list[RunSpec]:
    stale = not_fresh(url, "knowledge_index", partition_keys(url, "knowledge_index"), stored)
    return [
        RunSpec(f"knowledge_index[{c}]", "knowledge_index_job", ("knowledge_index",), c, tags={"medtrinity/trigger": trigger})
        for c in sorted(stale)  # type: ignore[type-var]
    ]


def unpartitioned_spec(url: str, job: str, assets: Sequence[str], label: str, trigger: str, stored: Stored | None = None) -> list[RunSpec]:
    stale = tuple(a for a in assets if not_fresh(url, a, (), stored))
    return [RunSpec(label, job, stale, tags={"medtrinity/trigger": trigger})] if stale else []


def release_spec(name: str, benchmark_dirs: dict[str, str] | None, assets: Sequence[str] = RELEASE_ASSETS, trigger: str = "cli") -> RunSpec:
    config = {"ops": {"dataset_release": {"config": {"benchmark_dirs": dict(benchmark_dirs or {})}}}} if "dataset_release" in assets else {}
    return RunSpec(f"release[{name}]", "release_job", tuple(assets), name, tags={"medtrinity/trigger": trigger}, run_config=config)


def release_if_stale(url: str, name: str, trigger: str, stored: Stored | None = None) -> list[RunSpec]:
    stale = tuple(a for a in RELEASE_ASSETS if not_fresh(url, a, [name], stored))
    return [release_spec(name, None, stale, trigger)] if stale else []


def materialise_stale(
    url: str,
    shard_partitions: Sequence[str],
    knowledge: bool,
    release: str | None,
    echo: Callable[[str], None] = print,
    stored: Stored | None = None,
) -> Runner:
    """The demo's phases: knowledge index, then the shards, the reports and the release; only what is
    missing or stale (or, with `stored`, no longer in storage). Returns the runner (its outcomes and
    per-stage times)."""
    runner = Runner(url, echo)
    trigger = "demo"
    if knowledge:
        specs = knowledge_specs(url, trigger, stored)
        echo(f"Knowledge index: {len(specs)} corpus index(es) to build" + ("" if specs else " (up to date)"))
        runner.run(specs, follow_logs=True)
    shards, counts = shard_specs(url, shard_partitions, trigger, stored)
    echo(
        f"Shards: {len(shards)} of {len(shard_partitions)} to run "
        f"({counts['MISSING']} missing, {counts['STALE']} stale, {counts['FRESH']} up to date)"
    )
    evaluation = unpartitioned_spec(url, "retrieval_evaluation_job", ["retrieval_evaluation"], "retrieval_evaluation", trigger, stored) if knowledge else []
    runner.run(evaluation + shards)
    reports = unpartitioned_spec(url, "reports_job", REPORT_ASSETS, "reports (duplicates, rejects)", trigger, stored)
    if reports:
        echo("Reports:")
        runner.run(reports)
    if release:
        specs = release_if_stale(url, release, trigger, stored)
        echo(f"Release '{release}':" + ("" if specs else " up to date"))
        runner.run(specs)
    return runner


def stage_line(seconds: dict[str, float]) -> str:
    order = [*DATASET_ASSETS, "knowledge_index", "retrieval_evaluation", *REPORT_ASSETS, *RELEASE_ASSETS]
    parts = [f"{name} {duration(seconds[name]) if seconds[name] >= 60 else f'{seconds[name]:.1f}s'}" for name in order if name in seconds]
    return "Time per stage (summed over runs): " + (", ".join(parts) if parts else "nothing ran")


__all__ = ["DagsterApiError", "Runner", "materialise_stale", "release_spec", "stage_line"]
