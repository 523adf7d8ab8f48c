"""Run-length encoding of boolean masks, COCO-compatible, serialised as one compact string.

Format: ``"<H> <W>;<c0> <c1> <c2> ..."`` where the counts are COCO's *uncompressed* RLE:
runs over the mask flattened in column-major (Fortran) order, alternating background and
foreground, always starting with a (possibly zero-length) background run. An empty mask is
``"<H> <W>;<H*W>"``; a zero-size mask is ``"<H> <W>;"``.

`rle_to_coco` / `rle_from_coco` convert to and from COCO's ``{"size": [H, W], "counts": [...]}``
dict (which pycocotools' ``frPyObjects`` accepts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from medtrinity_assets.records import RejectError


def rle_counts(mask: np.ndarray) -> list[int]:
    """COCO uncompressed counts of a 2-D mask (column-major, starting with a background run)."""
    if mask.ndim != 2:
        raise RejectError("bad_mask", f"RLE needs a 2-D mask, got shape {mask.shape}")
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs.insert(0, 0)
    return [int(r) for r in runs]


def rle_encode(mask: np.ndarray) -> str:
    """Encode a 2-D boolean mask as ``"H W;c0 c1 ..."`` (COCO counts, column-major)."""
    counts = rle_counts(mask)
    height, width = (int(s) for s in mask.shape)
    return f"{height} {width};" + " ".join(str(c) for c in counts)


def _parse(rle: str) -> tuple[tuple[int, int], list[int]]:
    if not isinstance(rle, str) or ";" not in rle:
        raise RejectError("bad_rle", f"expected 'H W;counts', got {str(rle)[:40]!r}")
    head, _, body = rle.partition(";")
    try:
        height, width = (int(v) for v in head.split())
        counts = [int(v) for v in body.split()]
    except ValueError as exc:
        raise RejectError("bad_rle", f"non-integer field in RLE {rle[:40]!r}") from exc
    return (height, width), counts


def counts_to_mask(counts: Sequence[int], shape: tuple[int, int]) -> np.ndarray:
    """Decode COCO uncompressed counts into a bool mask of `shape` (H, W)."""
    height, width = shape
    total = height * width
    if height < 0 or width < 0 or any(c < 0 for c in counts):
        raise RejectError("bad_rle", "negative size or run length")
    if sum(counts) != total:
        raise RejectError("bad_rle", f"run lengths sum to {sum(counts)}, mask has {total} pixels")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, np.asarray(counts, dtype=np.int64))
    return flat.reshape((height, width), order="F")


def rle_decode(rle: str, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Decode `rle_encode` output back into a bool (H, W) mask; `shape`, if given, must match."""
    carried, counts = _parse(rle)
    if shape is not None and tuple(int(s) for s in shape) != carried:
        raise RejectError("shape_mismatch", f"RLE is {carried}, expected {tuple(shape)}")
    return counts_to_mask(counts, carried)


def rle_to_coco(rle: str) -> dict:
    """Our RLE string as a COCO uncompressed RLE dict ``{"size": [H, W], "counts": [...]}``."""
    (height, width), counts = _parse(rle)
    return {"size": [height, width], "counts": counts}


def rle_from_coco(obj: Mapping) -> np.ndarray:
    """Decode a COCO uncompressed RLE dict (``counts`` as a list of ints) into a bool mask."""
    counts = obj.get("counts")
    size = obj.get("size")
    if not isinstance(counts, (list, tuple)) or not isinstance(size, (list, tuple)) or len(size) != 2:
        raise RejectError(
            "bad_rle", "COCO RLE needs 'size' [H, W] and uncompressed 'counts' (a list of ints)"
        )
    return counts_to_mask([int(c) for c in counts], (int(size[0]), int(size[1])))
