"""What the definitions are generated from: the source catalog, the knowledge corpora and the
releases (read once when the code location loads), and where GPU work is declared."""

from functools import lru_cache

from medtrinity_assets import settings
from medtrinity_assets.catalog import Catalog, load_catalog
from medtrinity_assets.knowledge import load_corpus_config
from medtrinity_assets.partitions import corpus_partitions, dataset_partitions, dataset_shard_partitions
from medtrinity_resources.experts import GPU_TAG

GPU_POOL = "gpu"  # expert-model and MLLM steps on a GPU: one slot per GPU (`concurrency.pools`)
KNOWLEDGE_POOL = "knowledge_store"  # one index build at a time: the embedded store has one writer


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return load_catalog(settings.catalog_path())


@lru_cache(maxsize=1)
def corpora() -> dict:
    return load_corpus_config(settings.corpora_path())


def gpu_pool() -> str | None:
    """The pool of expert-model and MLLM steps: ``gpu`` when models run on a GPU (one step at a time
    across runs, `concurrency.pools` in dagster.yaml), none on CPU deployments."""
    return GPU_POOL if settings.uses_gpu() else None


def gpu_run_tags() -> dict[str, str]:
    """The GPU run tag (limited by the instance's `tag_concurrency_limits`) when models run on a GPU."""
    return {GPU_TAG: "true"} if settings.uses_gpu() else {}


CATALOG = catalog()
DATASET_PARTITIONS = dataset_partitions(CATALOG)
DATASET_SHARD_PARTITIONS = dataset_shard_partitions(CATALOG)
CORPUS_PARTITIONS = corpus_partitions(sorted(corpora().keys()))
