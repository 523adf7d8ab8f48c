"""What the definitions are generated from: the source catalog and the knowledge corpora."""


from functools import lru_cache

from medtrinity_assets import settings
from medtrinity_assets.catalog import Catalog, load_catalog
from medtrinity_assets.knowledge import load_corpus_config
from medtrinity_assets.partitions import corpus_partitions, dataset_partitions, dataset_shard_partitions

GPU_POOL = "gpu"
GPU_TAGS = {"medtrinity/gpu": "true"}


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return load_catalog(settings.catalog_path())


@lru_cache(maxsize=1)
def corpora() -> dict:
    return load_corpus_config(settings.corpora_path())


CATALOG = catalog()
DATASET_PARTITIONS = dataset_partitions(CATALOG)
DATASET_SHARD_PARTITIONS = dataset_shard_partitions(CATALOG)
CORPUS_PARTITIONS = corpus_partitions(sorted(corpora().keys()))
