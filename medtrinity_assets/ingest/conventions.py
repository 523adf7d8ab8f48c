"""Mask conventions: what the values of a mask file mean, one entry each.

A convention says how decoded values become ids (`decode`), how the decoded planes split into
MaskLayers (`layers`: ``binary`` one layer of nonzero pixels, ``multilabel`` one layer per id named
by the label table, ``instance`` one layer per id of the fixed label), what a catalog mask entry
must give (`needs`), whether one annotation file serves many images (`annotation_file`, read by
`ingest/annotations.py`) and how a colour raster mask is read (`colour`). The catalog validates
its ``convention`` fields against this table, so a new convention is one entry here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from medtrinity_assets.records import MaskRef, RejectError


def check_finite_mask(values: np.ndarray, path: str) -> None:
    """RejectError('non_finite_values') for a float mask with NaN/inf (NaN != 0 would read as foreground)."""
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
        n_bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        raise RejectError("non_finite_values", f"mask {os.path.basename(path)} has {n_bad} NaN/infinite values")


def integer_ids(values: np.ndarray, ref: MaskRef) -> np.ndarray:
    """Integer ids of a label map (negative ids read as background; fractional values are rejected)."""
    if values.dtype.kind == "f":
        rounded = np.rint(values)
        if not np.array_equal(rounded, values):
            raise RejectError("unsupported_mask", f"non-integer values in label map {os.path.basename(ref.path)}")
        values = rounded.astype(np.int64)
    if values.dtype.kind == "b":
        values = values.astype(np.uint8)
    if values.size and values.min() < 0:
        values = np.where(values < 0, 0, values)
    return values


def nonzero(values: np.ndarray, ref: MaskRef) -> np.ndarray:
    return (values != 0).astype(np.uint8)


def above_threshold(values: np.ndarray, ref: MaskRef) -> np.ndarray:
    return (values > ref.threshold).astype(np.uint8)


@dataclass(frozen=True)
class MaskConvention:
    name: str
    layers: Literal["binary", "multilabel", "instance"]
    needs: Literal["label", "label_table", "nothing"]  # what a catalog mask entry must give
    decode: Callable[[np.ndarray, MaskRef], np.ndarray] | None = None  # None: an annotation file
    annotation_file: bool = False  # one file (boxes, polygons) for many images
    colour: Literal["grey", "max", "exact"] = "exact"  # RGB raster: to grey, max channel, or must be grey


CONVENTIONS: dict[str, MaskConvention] = {
    c.name: c
    for c in (
        MaskConvention("binary", "binary", "label", nonzero, colour="max"),
        MaskConvention("threshold", "binary", "label", above_threshold, colour="grey"),  # lossy JPEG masks
        MaskConvention("multilabel", "multilabel", "label_table", integer_ids),
        MaskConvention("instance", "instance", "label", integer_ids),
        MaskConvention("boxes", "binary", "nothing", annotation_file=True),
        MaskConvention("polygons", "binary", "nothing", annotation_file=True),
    )
}
ANNOTATION_CONVENTIONS = tuple(name for name, c in CONVENTIONS.items() if c.annotation_file)


def mask_convention(name: str) -> MaskConvention:
    """The convention called `name` (RejectError 'unsupported_mask' when there is none)."""
    if name not in CONVENTIONS:
        raise RejectError("unsupported_mask", f"unknown mask convention '{name}'")
    return CONVENTIONS[name]


def known_convention(name: str) -> str:
    """`name` if it is a convention (a pydantic validator: ValueError naming the known ones)."""
    if name not in CONVENTIONS:
        raise ValueError(f"unknown mask convention '{name}'; known: {', '.join(CONVENTIONS)}")
    return name


def to_convention(values: np.ndarray, ref: MaskRef) -> np.ndarray:
    """Mask values -> ids: 0/1 for binary/threshold, integer ids for multilabel/instance."""
    check_finite_mask(values, ref.path)
    convention = mask_convention(ref.convention)
    if convention.decode is None:
        raise RejectError("unsupported_mask", f"'{ref.convention}' masks are annotation files, not label maps")
    return convention.decode(values, ref)
