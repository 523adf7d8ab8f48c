"""`medtrinity` command line: run the demo graph on the local instance, open the UI, summarise.

    medtrinity demo                 materialise everything for every catalog source on the local instance
    medtrinity demo --sources a,b   only these sources (knowledge index is built either way)
    medtrinity ui                   dagster dev on the same instance (DAGSTER_HOME=<repo>/.dagster_home)
    medtrinity summary              where the dataset is and what it holds
    medtrinity release [--name demo] [--benchmark NAME=DIR]
                                    build a dataset release (data/releases.yaml) from the triplets:
                                    Parquet, LLaVA JSON, WebDataset, card, gallery, VQA pairs
    medtrinity backfill --source S  submit a Dagster backfill of every shard of S (or --shards 00,01)
                                    to the instance ($DAGSTER_HOME) or a webserver (--webserver URL);
                                    the daemon runs it under the run queue, the UI shows it
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from medtrinity_assets import settings


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


# The console shows one line per run; every event is still stored on the instance for the UI.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class RunOutcome:
    label: str
    success: bool
    seconds: float
    result: object


def _run(job, instance, partition_key=None, label: str = "", echo: bool = True, run_config: dict | None = None) -> RunOutcome:
    t0 = time.perf_counter()
    result = job.execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False, run_config={**QUIET_CONSOLE, **(run_config or {})}
    )
    outcome = RunOutcome(label or job.name, result.success, time.perf_counter() - t0, result)
    if echo:
        print(f"  {outcome.label:<48} {'ok' if result.success else 'FAILED':>6}  {outcome.seconds:6.1f}s", flush=True)
        if not result.success:
            for ev in result.all_events:
                if ev.is_failure:
                    print(f"    {ev.message}", file=sys.stderr)
    return outcome


def materialize_all(instance, sources: list[str] | None = None, knowledge: bool = True, echo: bool = True) -> list[RunOutcome]:
    """Knowledge corpora and retrieval evaluation, then every (source, shard): one Dagster run each."""
    from medtrinity_assets.definitions import defs
    from medtrinity_assets.defs.context import CATALOG, CORPUS_PARTITIONS
    from medtrinity_assets.partitions import dataset_shard_key

    names = sources or CATALOG.names
    unknown = sorted(set(names) - set(CATALOG.names))
    if unknown:
        raise SystemExit(f"unknown sources: {', '.join(unknown)} (catalog has: {', '.join(CATALOG.names)})")
    outcomes: list[RunOutcome] = []
    if knowledge:
        echo and print("Knowledge index:")
        for corpus in CORPUS_PARTITIONS.get_partition_keys():
            outcomes.append(_run(defs.resolve_job_def("knowledge_index_job"), instance, corpus, f"knowledge_index[{corpus}]", echo))
        outcomes.append(_run(defs.resolve_job_def("retrieval_evaluation_job"), instance, None, "retrieval_evaluation", echo))
    echo and print("Sources:")
    for name in names:
        outcomes.append(_run(defs.resolve_job_def("source_manifest_job"), instance, name, f"source_manifest[{name}]", echo))
        for shard in CATALOG.shard_keys:
            key = dataset_shard_key(name, shard)
            outcomes.append(_run(defs.resolve_job_def("dataset_shard_job"), instance, key, f"dataset[{name}|{shard}]", echo))
    outcomes.append(_run(defs.resolve_job_def("image_duplicates_job"), instance, None, "image_duplicates", echo))
    return outcomes


def run_demo(sources: list[str] | None = None, skip_knowledge: bool = False, release: bool | None = None) -> int:
    """Materialise the whole graph on the local instance (the runs show in `medtrinity ui`);
    the demo release is built when every source ran (or when asked for)."""
    ensure_dagster_home()
    from dagster import DagsterInstance

    instance = DagsterInstance.get()
    print(f"Dagster instance: {instance.root_directory}")
    outcomes = materialize_all(instance, sources, knowledge=not skip_knowledge)
    built = None
    if release if release is not None else not sources:
        print("Release:")
        built = materialize_release(instance, "demo")
        outcomes.append(built)
    print()
    print_summary()
    if built is not None and built.success:
        print_release("demo")
    failed = [o.label for o in outcomes if not o.success]
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def materialize_release(instance, name: str, benchmark_dirs: dict[str, str] | None = None, echo: bool = True) -> RunOutcome:
    """dataset_release + vqa_pairs for one release of data/releases.yaml (one Dagster run)."""
    from medtrinity_assets.definitions import defs
    from medtrinity_assets.defs.exports import RELEASES

    if name not in RELEASES:
        raise SystemExit(f"unknown release: {name} (data/releases.yaml has: {', '.join(sorted(RELEASES))})")
    run_config = {"ops": {"dataset_release": {"config": {"benchmark_dirs": dict(benchmark_dirs or {})}}}}
    return _run(defs.resolve_job_def("release_job"), instance, name, f"release[{name}]", echo, run_config)


def print_release(name: str) -> None:
    """Where a built release is and what it holds."""
    import json

    from medtrinity_assets.definitions import build_resources
    from medtrinity_assets.export import release_prefix

    storage = build_resources()["storage"]
    prefix = release_prefix(name)
    manifest = json.loads(storage.read_bytes(prefix + "release.json"))
    counts = manifest["counts"]
    print(f"Release '{name}': {storage.uri(prefix)}")
    print(f"  {counts['records']} records, {counts['images']} images; splits " + ", ".join(f"{k} {v}" for k, v in counts["per_split"].items()))
    print(f"  card {storage.uri(prefix + 'README.md')}")
    print(f"  gallery {storage.uri(prefix + 'gallery/index.html')}")


def run_release(name: str, benchmarks: list[str]) -> int:
    """Build one release on the local instance and print where it is."""
    from medtrinity_assets.defs.exports import RELEASES

    if name not in RELEASES:
        raise SystemExit(f"unknown release: {name} (data/releases.yaml has: {', '.join(sorted(RELEASES))})")
    ensure_dagster_home()
    from dagster import DagsterInstance

    dirs = {}
    for item in benchmarks:
        bench, sep, folder = item.partition("=")
        if not sep or not bench or not folder:
            raise SystemExit(f"--benchmark wants NAME=DIR, got {item!r}")
        dirs[bench] = folder
    instance = DagsterInstance.get()
    outcome = materialize_release(instance, name, dirs)
    if outcome.success:
        print_release(name)
    return 0 if outcome.success else 1


def dataset_summary():
    """Triplets, rejects and quarantine counts read back from storage."""
    import polars as pl

    from medtrinity_assets.definitions import build_resources

    storage = build_resources()["storage"]
    frames = [storage.read_parquet(k) for k in storage.list_keys("manifests/triplets/") if k.endswith(".parquet")]
    triplets = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
    rej_frames = [storage.read_parquet(k) for k in storage.list_keys("rejects/") if k.endswith(".parquet")]
    rejects = pl.concat(rej_frames, how="vertical_relaxed") if rej_frames else pl.DataFrame()
    return storage, triplets, rejects


def print_summary() -> None:
    storage, triplets, rejects = dataset_summary()
    print(f"Dataset: {storage.uri('')}")
    if triplets.is_empty():
        print("  no triplets yet: run `medtrinity demo`")
        return
    n_q = int(triplets["quarantined"].sum())
    print(f"  triplets: {triplets.height} ({n_q} quarantined) from {triplets['image_id'].n_unique()} images, {triplets['dataset'].n_unique()} sources")
    print("  by modality:")
    for mod, n in triplets.group_by("modality").len().sort("len", descending=True).iter_rows():
        print(f"    {mod:<28} {n}")
    print("  by source:")
    for ds, n in triplets.group_by("dataset").len().sort("dataset").iter_rows():
        print(f"    {ds:<28} {n}")
    if not rejects.is_empty():
        print(f"  rejects: {rejects.height}")
        for row in rejects.select("dataset", "source_file", "reason").iter_rows():
            print(f"    {row[0]}/{row[1]}: {row[2]}")
    print(f"  triplet manifests: {storage.uri('manifests/triplets/')}")


def run_ui(port: int) -> int:
    ensure_dagster_home()
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(settings.REPO_ROOT / "workspace.yaml"), "-p", str(port)]
    return subprocess.call(cmd, cwd=settings.REPO_ROOT)


def run_backfill(args: argparse.Namespace) -> int:
    """Plan a source backfill, submit it (instance or webserver), optionally wait for it."""
    from medtrinity_assets.backfill import (
        SUCCESS_STATUSES,
        BackfillError,
        executor_run_config,
        parse_tags,
        plan_source_backfill,
        submit_to_instance,
        submit_to_webserver,
        wait_for_backfill,
    )
    from medtrinity_assets.definitions import defs
    from medtrinity_assets.defs.context import CATALOG
    from medtrinity_assets.defs.jobs import dataset_run_tags

    instance = None
    try:
        executor_name = defs.resolve_implicit_global_asset_job_def().executor_def.name
        plan = plan_source_backfill(
            CATALOG,
            args.source,
            shards=[s.strip() for s in args.shards.split(",") if s.strip()] if args.shards else None,
            tags={**dataset_run_tags(), **parse_tags(args.tag)},
            run_config=executor_run_config(args.executor, executor_name),
            include_manifest=not args.no_manifest,
        )
        if args.webserver:
            backfill_id = submit_to_webserver(args.webserver, plan)
            where = f"{args.webserver.rstrip('/')}/runs/b/{backfill_id}"
        else:
            if not os.environ.get("DAGSTER_HOME"):
                ensure_dagster_home()
            from dagster import DagsterInstance

            instance = DagsterInstance.get()
            backfill_id = submit_to_instance(instance, plan, defs.resolve_asset_graph())
            where = f"instance {instance.root_directory}"
        print(f"backfill {backfill_id}: {plan.title}, {len(plan.partition_keys)} shard partition(s), submitted to {where}", flush=True)
        if not args.wait:
            print("The daemon runs it (`dagster-daemon run`); follow it under Overview > Backfills in the UI.")
            return 0
        status = wait_for_backfill(instance, backfill_id, args.timeout, webserver=args.webserver)
        print(f"backfill {backfill_id}: {status}")
        return 0 if status in SUCCESS_STATUSES else 1
    except BackfillError as exc:
        print(f"medtrinity backfill: {exc}", file=sys.stderr)
        return 2
    finally:
        if instance is not None:
            instance.dispose()


def main(argv: list[str] | None = None) -> int:
    import warnings

    from dagster import BetaWarning, PreviewWarning

    warnings.filterwarnings("ignore", category=BetaWarning)  # keep the console to one line per run
    warnings.filterwarnings("ignore", category=PreviewWarning)
    parser = argparse.ArgumentParser(prog="medtrinity", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="materialise the whole graph for every catalog source on the local instance")
    demo.add_argument("--sources", help="comma-separated source names (default: all)")
    demo.add_argument("--skip-knowledge", action="store_true", help="reuse the existing knowledge index")
    demo.add_argument(
        "--release", action=argparse.BooleanOptionalAction, default=None,
        help="build the demo release at the end (default: only when every source ran)",
    )
    ui = sub.add_parser("ui", help="start dagster dev on the local instance")
    ui.add_argument("--port", type=int, default=3000)
    sub.add_parser("summary", help="print where the dataset is and what it holds")
    rel = sub.add_parser("release", help="build a dataset release from the triplets (all formats, card, gallery, VQA)")
    rel.add_argument("--name", default="demo", help="release name in data/releases.yaml (default: demo)")
    rel.add_argument("--benchmark", action="append", default=[], metavar="NAME=DIR", help="benchmark image folder to decontaminate against (repeatable)")
    bf = sub.add_parser("backfill", help="submit a Dagster backfill of one source's shards (run by the daemon)")
    bf.add_argument("--source", required=True, help="catalog source name")
    bf.add_argument("--shards", help="comma-separated shard keys, e.g. 00,01 (default: every shard)")
    bf.add_argument("--webserver", default=os.environ.get("MEDTRINITY_WEBSERVER_URL", ""), help="submit through this Dagster webserver's GraphQL API instead of $DAGSTER_HOME's instance")
    bf.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="extra run tag (repeatable), e.g. dagster-k8s/config=...")
    bf.add_argument("--executor", choices=["in_process", "default"], default="in_process", help="in_process: one process per shard run (default); default: the code location's executor")
    bf.add_argument("--no-manifest", action="store_true", help="do not refresh the source manifest first")
    bf.add_argument("--wait", action="store_true", help="wait until the backfill finishes; exit 1 unless it succeeded")
    bf.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait with --wait")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo(args.sources.split(",") if args.sources else None, args.skip_knowledge, args.release)
    if args.command == "ui":
        return run_ui(args.port)
    if args.command == "summary":
        print_summary()
        return 0
    if args.command == "release":
        return run_release(args.name, args.benchmark)
    if args.command == "backfill":
        return run_backfill(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
