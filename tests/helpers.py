"""Shared test helpers (tests/ is on sys.path under pytest's default import mode)."""

from __future__ import annotations

import os

from medtrinity_assets.records import MaskRef, SourceItem


def file_item(
    path,
    fmt: str,
    modality: str,
    organs=(),
    masks: tuple[MaskRef, ...] | list[MaskRef] = (),
    root=None,
    dataset: str = "t",
) -> SourceItem:
    """A SourceItem for one file, identified by its base name."""
    path = str(path)
    return SourceItem(
        dataset=dataset,
        item_id=os.path.basename(path),
        image_path=path,
        rel_path=os.path.basename(path),
        format=fmt,
        modality=modality,
        organs=tuple(organs),
        masks=tuple(masks),
        extra={"source_root": str(root)} if root else {},
    )


# -- in-process materialisation (tests only: `medtrinity demo` launches through a webserver) -------

QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class Outcome:
    def __init__(self, label: str, result) -> None:
        self.label, self.result, self.success = label, result, result.success


def run_job(defs, job: str, instance, partition_key=None, label: str = "", run_config: dict | None = None) -> Outcome:
    """One run of a code-location job, in this process, on `instance`."""
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False, run_config={**QUIET_CONSOLE, **(run_config or {})}
    )
    return Outcome(label or job, result)


def materialize_all(instance, sources=None, knowledge: bool = True, echo: bool = False) -> list[Outcome]:
    """Knowledge corpora and retrieval evaluation, every (source, shard) chain, the reports: one run each."""
    from medtrinity_assets.definitions import defs
    from medtrinity_assets.defs.context import CATALOG, CORPUS_PARTITIONS
    from medtrinity_assets.partitions import dataset_shard_key

    outcomes = []
    if knowledge:
        for corpus in CORPUS_PARTITIONS.get_partition_keys():
            outcomes.append(run_job(defs, "knowledge_index_job", instance, corpus, f"knowledge_index[{corpus}]"))
        outcomes.append(run_job(defs, "retrieval_evaluation_job", instance))
    for name in sources or CATALOG.names:
        for shard in CATALOG.shard_keys:
            outcomes.append(run_job(defs, "dataset_shard_job", instance, dataset_shard_key(name, shard), f"dataset[{name}|{shard}]"))
    outcomes.append(run_job(defs, "reports_job", instance))
    if echo:
        for o in outcomes:
            print(o.label, "ok" if o.success else "FAILED")
    return outcomes


def materialize_release(instance, name: str, benchmark_dirs: dict | None = None) -> Outcome:
    from medtrinity_assets.definitions import defs

    run_config = {"ops": {"dataset_release": {"config": {"benchmark_dirs": dict(benchmark_dirs or {})}}}}
    return run_job(defs, "release_job", instance, name, f"release[{name}]", run_config)
