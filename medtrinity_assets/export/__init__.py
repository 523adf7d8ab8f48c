"""The dataset as a product: releases (Parquet, LLaVA JSON, WebDataset), splits, decontamination,
dataset card with statistics figure, HTML gallery and VQA derivation. See `release.build_release`."""

from .config import ReleaseConfig, ReleaseConfigError, SplitFractions, VqaSettings, load_releases, parse_releases, releases_path
from .decontamination import (
    BenchmarkHashes,
    PhashIndex,
    apply_decontamination,
    decontamination_report,
    find_benchmark_matches,
    hash_benchmark,
    phash_hex,
)
from .release import ReleaseResult, build_release, load_rejects, load_triplets, select_records
from .verify import ReleaseError, ReleaseVerification, read_release_records, verify_release
from .schema import RELEASE_COLUMNS, RELEASE_SCHEMA, RELEASE_SCHEMA_VERSION, VQA_COLUMNS, VQA_SCHEMA
from .splits import add_splits, assign_split, groups_in_several_splits, split_group_key
from .vqa import VQA_RULES_VERSION, rule_based_pairs, vqa_summary
from .vqa_model import derive_vqa
from .vqa_release import VqaResult, build_vqa
from .webdataset import WdsVerification, verify_shards
from .writer import release_prefix

__all__ = [
    "RELEASE_COLUMNS",
    "RELEASE_SCHEMA",
    "RELEASE_SCHEMA_VERSION",
    "VQA_COLUMNS",
    "VQA_RULES_VERSION",
    "VQA_SCHEMA",
    "BenchmarkHashes",
    "PhashIndex",
    "ReleaseConfig",
    "ReleaseConfigError",
    "ReleaseError",
    "ReleaseResult",
    "ReleaseVerification",
    "SplitFractions",
    "VqaResult",
    "VqaSettings",
    "WdsVerification",
    "add_splits",
    "apply_decontamination",
    "assign_split",
    "build_release",
    "build_vqa",
    "decontamination_report",
    "derive_vqa",
    "find_benchmark_matches",
    "groups_in_several_splits",
    "hash_benchmark",
    "load_rejects",
    "load_releases",
    "load_triplets",
    "parse_releases",
    "phash_hex",
    "read_release_records",
    "release_prefix",
    "releases_path",
    "rule_based_pairs",
    "select_records",
    "split_group_key",
    "verify_release",
    "verify_shards",
    "vqa_summary",
]
