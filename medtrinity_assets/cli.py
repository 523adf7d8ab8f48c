"""`medtrinity` command line. Every run it starts is launched through a Dagster webserver -- a
`dagster dev` of its own on $DAGSTER_HOME (default <repo>/.dagster_home) for the command's
duration, or the one given by --webserver / MEDTRINITY_WEBSERVER_URL -- so the runs belong to the
code location: the UI lists them under Jobs and Overview › Timeline and can re-execute them.

    medtrinity demo                 materialise what is missing or stale for every catalog source
                                    (knowledge index, shards, reports, demo release) and time it
    medtrinity demo --sources a,b   only these sources (the knowledge index too, unless --skip-knowledge)
    medtrinity ui                   dagster dev on the same instance
    medtrinity summary              where the dataset is and what it holds
    medtrinity release [--name demo] [--benchmark NAME=DIR]
                                    build a dataset release (data/releases.yaml) from the triplets:
                                    Parquet, LLaVA JSON, WebDataset, card, gallery, VQA pairs
    medtrinity backfill --source S  a Dagster backfill of the missing or stale shards of S (--all:
                                    every shard; --shards 00,01), run by the daemon, shown in the UI
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # the demo's elapsed time counts from here (imports included)

import argparse  # noqa: E402
import json
import resource  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from medtrinity_assets import settings  # noqa: E402
from medtrinity_assets.dagster_client import DagsterApiError, report_changed_versions  # noqa: E402
from medtrinity_assets.services import DagsterServices, ensure_dagster_home  # noqa: E402


def cpu_seconds() -> float:
    """User + system CPU time of this process."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def load_catalog():
    from medtrinity_assets.catalog import load_catalog as load

    return load(settings.catalog_path())


def observe(url: str, catalog, sources: list[str]) -> list[str]:
    """Report the sources' shard fingerprints as source_files observations; the changed partitions."""
    from medtrinity_assets.defs.names import SOURCE_FILES
    from medtrinity_assets.defs.sources import observed_fingerprints

    return report_changed_versions(url, SOURCE_FILES, observed_fingerprints(catalog, sources))


def run_demo(sources: list[str] | None, skip_knowledge: bool = False, release: bool | None = None, webserver: str = "") -> int:
    """Materialise what is missing or stale, through a webserver; print progress, timing, summary."""
    from medtrinity_assets.demo import materialise_stale, stage_line
    from medtrinity_assets.stored import stored_from_settings

    t0 = T_START
    home = ensure_dagster_home()
    services = DagsterServices(webserver)
    try:
        url = services.start()  # boots while the catalog loads and the fingerprints are taken
        catalog = load_catalog()
        names = sources or catalog.names
        unknown = sorted(set(names) - set(catalog.names))
        if unknown:
            raise SystemExit(f"unknown sources: {', '.join(unknown)} (catalog has: {', '.join(catalog.names)})")
        print(f"Dagster: {url} (instance {home}{'; log ' + str(services.log_path) if services.log_path else ''})", flush=True)
        services.wait_ready()
        changed = observe(url, catalog, names)
        print(f"Source files: {len(changed)} shard(s) new or changed", flush=True)
        build_release = release if release is not None else not sources
        partitions = [f"{n}|{s}" for n in names for s in catalog.shard_keys]
        release_name = "demo" if build_release else None
        runner = materialise_stale(url, partitions, knowledge=not skip_knowledge, release=release_name, stored=stored_from_settings())
    except DagsterApiError as exc:
        print(f"medtrinity demo: {exc}", file=sys.stderr)
        return 2
    finally:
        services_cpu = services.cpu_seconds()
        services.stop()
    print(stage_line(runner.stage_seconds()))
    print()
    print_summary()
    if build_release:
        try:
            print_release("demo")
        except Exception as exc:  # noqa: BLE001 - StorageError (not built) or an unreadable release.json
            print(f"no demo release to show: {exc}")
    failed = [o.spec.label for o in runner.outcomes if not o.success]
    print(f"\nDone in {time.perf_counter() - t0:.1f}s wall, {cpu_seconds() + services_cpu:.1f}s CPU (user+sys, Dagster services and runs included); "
          f"{len(runner.outcomes)} run(s), {len(failed)} failed.")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def run_release(name: str, benchmarks: list[str], webserver: str = "") -> int:
    """Build one release through a webserver and print where it is."""
    from medtrinity_assets.demo import Runner, release_spec
    from medtrinity_assets.export import load_releases

    releases = load_releases()
    if name not in releases:
        raise SystemExit(f"unknown release: {name} ({settings.releases_path()} has: {', '.join(sorted(releases))})")
    dirs = {}
    for item in benchmarks:
        bench, sep, folder = item.partition("=")
        if not sep or not bench or not folder:
            raise SystemExit(f"--benchmark wants NAME=DIR, got {item!r}")
        dirs[bench] = folder
    ensure_dagster_home()
    try:
        with DagsterServices(webserver) as services:
            services.wait_ready()
            outcome = Runner(services.url).run([release_spec(name, dirs)])[0]
    except DagsterApiError as exc:
        print(f"medtrinity release: {exc}", file=sys.stderr)
        return 2
    if outcome.success:
        print_release(name)
    return 0 if outcome.success else 1


def print_release(name: str) -> None:
    """Where a built release is and what it holds."""
    from medtrinity_assets.defs.resources import storage_from_settings
    from medtrinity_assets.export import release_prefix

    storage = storage_from_settings()
    prefix = release_prefix(name)
    manifest = json.loads(storage.read_bytes(prefix + "release.json"))
    counts = manifest["counts"]
    print(f"Release '{name}': {storage.uri(prefix)}")
    print(f"  {counts['records']} records, {counts['images']} images; splits " + ", ".join(f"{k} {v}" for k, v in counts["per_split"].items()))
    print(f"  card {storage.uri(prefix + 'README.md')}")
    print(f"  gallery {storage.uri(prefix + 'gallery/index.html')}")
    print(f"  load    datasets.load_dataset({storage.uri(prefix).rstrip('/')!r}, 'full')  # or 'minimal'; images decode to PIL")


def dataset_summary():
    """Triplets, rejects and quarantine counts read back from storage."""
    import polars as pl

    from medtrinity_assets.defs.resources import storage_from_settings

    storage = storage_from_settings()
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
        print(f"  rejects: {rejects.height} (asset source_rejects in the UI)")
        for row in rejects.select("dataset", "source_file", "reason").iter_rows():
            print(f"    {row[0]}/{row[1]}: {row[2]}")
    print(f"  triplet manifests: {storage.uri('manifests/triplets/')}")


def run_ui(port: int) -> int:
    ensure_dagster_home()
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(settings.REPO_ROOT / "workspace.yaml"), "-p", str(port)]
    return subprocess.call(cmd)


def run_backfill(args: argparse.Namespace) -> int:
    """Plan a source backfill (missing or stale shards unless --all), submit it, optionally wait."""
    from medtrinity_assets.backfill import SUCCESS_STATUSES, BackfillError, parse_tags, plan_source_backfill, submit_backfill, wait_for_backfill
    from medtrinity_assets.defs.jobs import dataset_run_tags
    from medtrinity_assets.defs.names import DATASET_ASSETS
    from medtrinity_assets.stored import storage_status, stored_from_settings

    try:
        catalog = load_catalog()
        shards = [s.strip() for s in args.shards.split(",") if s.strip()] if args.shards else None
        tags = {**dataset_run_tags(), **parse_tags(args.tag)}
        plan_source_backfill(catalog, args.source, shards=shards, tags=tags)  # validates before starting anything
        if not args.webserver:
            ensure_dagster_home()
        with DagsterServices(args.webserver, daemon=False) as services:
            services.wait_ready()
            stale = None
            if not args.all:
                observe(services.url, catalog, [args.source])
                partitions = [f"{args.source}|{s}" for s in catalog.shard_keys]
                stored = stored_from_settings()
                stale = {a: storage_status(services.url, a, partitions, stored) for a in DATASET_ASSETS}
            plan = plan_source_backfill(catalog, args.source, shards=shards, tags=tags, stale=stale)
            if plan.is_empty:
                print(f"{args.source}: every chosen shard is up to date (use --all to re-run them anyway)")
                return 0
            backfill_id = submit_backfill(services.url, plan)
            where = args.webserver.rstrip("/") + f"/runs/b/{backfill_id}" if args.webserver else f"instance {ensure_dagster_home()}"
            print(f"backfill {backfill_id}: {plan.title}, {len(plan.partition_keys)} shard partition(s), submitted to {where}", flush=True)
            if not args.wait:
                print("The daemon runs it (`dagster-daemon run`); follow it under Overview > Backfills in the UI.")
                return 0
            status = wait_for_backfill(services.url, backfill_id, args.timeout)
        print(f"backfill {backfill_id}: {status}")
        return 0 if status in SUCCESS_STATUSES else 1
    except (BackfillError, DagsterApiError, settings.SettingsError) as exc:
        print(f"medtrinity backfill: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medtrinity", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    webserver = {"default": settings.env("MEDTRINITY_WEBSERVER_URL"), "help": "use this running Dagster webserver instead of starting one"}
    demo = sub.add_parser("demo", help="materialise what is missing or stale for every catalog source")
    demo.add_argument("--sources", help="comma-separated source names (default: all)")
    demo.add_argument("--skip-knowledge", action="store_true", help="do not build the knowledge index even if it is missing or stale")
    demo.add_argument("--release", action=argparse.BooleanOptionalAction, default=None, help="build the demo release at the end (default: only when every source ran)")
    demo.add_argument("--webserver", **webserver)
    ui = sub.add_parser("ui", help="start dagster dev on the local instance")
    ui.add_argument("--port", type=int, default=3000)
    sub.add_parser("summary", help="print where the dataset is and what it holds")
    rel = sub.add_parser("release", help="build a dataset release from the triplets (all formats, card, gallery, VQA)")
    rel.add_argument("--name", default="demo", help="release name in data/releases.yaml (default: demo)")
    rel.add_argument("--benchmark", action="append", default=[], metavar="NAME=DIR", help="benchmark image folder to decontaminate against (repeatable)")
    rel.add_argument("--webserver", **webserver)
    bf = sub.add_parser("backfill", help="a Dagster backfill of one source's missing or stale shards (run by the daemon)")
    bf.add_argument("--source", required=True, help="catalog source name")
    bf.add_argument("--shards", help="comma-separated shard keys, e.g. 00,01 (default: every shard)")
    bf.add_argument("--all", action="store_true", help="target every asset of every chosen shard, fresh or not")
    bf.add_argument("--webserver", **{**webserver, "help": "submit through this webserver (default: one started on $DAGSTER_HOME's instance)"})
    bf.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="extra run tag (repeatable), e.g. dagster-k8s/config=...")
    bf.add_argument("--wait", action="store_true", help="wait until the backfill finishes; exit 1 unless it succeeded")
    bf.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait with --wait")
    return parser


def _exit_on_sigterm(signum, frame) -> None:  # noqa: ARG001
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the Dagster services a command started are stopped with it
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if args.command == "demo":
        return run_demo(args.sources.split(",") if args.sources else None, args.skip_knowledge, args.release, args.webserver)
    if args.command == "ui":
        return run_ui(args.port)
    if args.command == "summary":
        print_summary()
        return 0
    if args.command == "release":
        return run_release(args.name, args.benchmark, args.webserver)
    if args.command == "backfill":
        return run_backfill(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
