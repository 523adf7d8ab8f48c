"""Train/validation/test assignment by patient (else volume/item), deterministic and salted.

The split group of a record is, in order of preference:

1. its patient (``patient_hash`` from ingestion, salted upstream), across sources;
2. the group a release's ``group_patterns`` regex extracts from its ``source_file`` (2D slices
   exported one file per slice: ``amos_0507_31.png`` -> volume ``amos_0507``);
3. its source file (all slices and frames of one volume or DICOM share it).

A group goes to the split whose cumulative fraction interval holds
``u = sha256(salt, group) / 2**64``: the same salt and group always land in the same split,
adding records never moves existing groups, and no group can span two splits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

import polars as pl

from .config import SPLITS


def split_group_key(dataset: str, source_file: str, patient_hash: str | None, pattern: str | None = None) -> str:
    """The grouping key of one record (patient, else pattern group, else source file)."""
    if patient_hash:
        return f"patient:{patient_hash}"
    if pattern:
        m = re.match(pattern, source_file or "")
        if m and m.group("group"):
            return f"{dataset}:group:{m.group('group')}"
    return f"{dataset}:file:{source_file}"


def group_unit(salt: str, group_key: str) -> float:
    """A uniform number in [0, 1) from the salted hash of a group key."""
    digest = hashlib.sha256(f"{salt}\x00{group_key}".encode()).hexdigest()
    return int(digest[:16], 16) / 2**64


def group_id(salt: str, group_key: str) -> str:
    """Public, salted id of a split group (what the release exports; never the patient hash)."""
    return hashlib.sha256(f"{salt}\x01{group_key}".encode()).hexdigest()[:16]


def assign_split(group_key: str, fractions: Mapping[str, float], salt: str) -> str:
    """``train`` / ``validation`` / ``test`` for a group, by cumulative fractions in SPLITS order."""
    u = group_unit(salt, group_key)
    edge = 0.0
    last = next(s for s in reversed(SPLITS) if fractions.get(s, 0.0) > 0)
    for name in SPLITS:
        edge += fractions.get(name, 0.0)
        if u < edge and fractions.get(name, 0.0) > 0:
            return name
    return last  # rounding of fractions summing to 1


def add_splits(df: pl.DataFrame, fractions: Mapping[str, float], salt: str, group_patterns: Mapping[str, str] | None = None) -> pl.DataFrame:
    """`df` (dataset, source_file, patient_hash) with ``split_key`` (internal), ``split_group`` and ``split``."""
    patterns = dict(group_patterns or {})
    keys = [
        split_group_key(d, f, p, patterns.get(d))
        for d, f, p in zip(df["dataset"].to_list(), df["source_file"].to_list(), df["patient_hash"].to_list(), strict=True)
    ]
    by_key = {k: (group_id(salt, k), assign_split(k, fractions, salt)) for k in set(keys)}
    return df.with_columns(
        pl.Series("split_key", keys, dtype=pl.Utf8),
        pl.Series("split_group", [by_key[k][0] for k in keys], dtype=pl.Utf8),
        pl.Series("split", [by_key[k][1] for k in keys], dtype=pl.Utf8),
    )


def groups_in_several_splits(df: pl.DataFrame, group_col: str = "split_group") -> list[str]:
    """Groups whose records sit in more than one split (must be empty)."""
    if df.is_empty():
        return []
    many = df.group_by(group_col).agg(pl.col("split").n_unique().alias("n")).filter(pl.col("n") > 1)
    return sorted(many[group_col].to_list())


def split_summary(df: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Records, images and groups per split (every split named, zeros included)."""
    out = {}
    for name in SPLITS:
        part = df.filter(pl.col("split") == name)
        out[name] = {
            "records": part.height,
            "images": part["image_id"].n_unique() if part.height else 0,
            "groups": part["split_group"].n_unique() if part.height else 0,
        }
    return out
