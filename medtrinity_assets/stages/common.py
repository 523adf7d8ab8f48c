"""Small helpers shared by the stage functions."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from PIL import Image

from medtrinity_assets.phi.patterns import scrub_text
from medtrinity_assets.schema import REJECTS_SCHEMA, conform


@dataclass
class Rejects:
    """Collects reject rows of one shard; never raises."""

    dataset: str
    shard: str
    stage: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, item_id: str, source_file: str, reason: str, detail: str = "") -> None:
        self.rows.append(
            {
                "dataset": self.dataset,
                "shard": self.shard,
                "stage": self.stage,
                "item_id": item_id,
                "source_file": source_file,
                "reason": reason,
                "detail": scrub_text(detail)[:500],  # PHI patterns -> <kind>
            }
        )

    def frame(self) -> pl.DataFrame:
        return conform(self.rows, REJECTS_SCHEMA)


def rejects_key(stage: str, dataset: str, shard: str) -> str:
    return f"rejects/{stage}/{dataset}/{shard}.parquet"


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def thumbnail_markdown(png: bytes, max_side: int = 320, alt: str = "preview") -> str:
    """A small inline image for Dagster UI metadata."""
    img = Image.open(io.BytesIO(png))
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"


MASK_STACK_FORMAT = 2  # 1: (n, H, W/8) packed full frames; 2: packed bounding-box crops


def save_mask_layers(layers: list, shape: tuple[int, int]) -> bytes:
    """Pack mask layers (+ labels) into a compressed npz: each layer's bounding-box crop, bit-packed.

    Size and memory follow the foreground, not layers x H x W (format 2; `load_mask_layers`
    also reads format 1 files written before).
    """
    chunks, starts, meta, pos = [], [], [], 0
    for layer in layers:
        crop = np.asarray(layer.crop, dtype=bool)
        bits = np.packbits(crop.ravel())
        chunks.append(bits)
        starts.append(pos)
        pos += bits.size
        meta.append(
            {
                "label": layer.label,
                "instance": layer.instance,
                "label_id": layer.label_id,
                "offset": list(layer.offset),
                "crop": [int(crop.shape[0]), int(crop.shape[1])] if crop.ndim == 2 else [0, 0],
            }
        )
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        format=np.array(MASK_STACK_FORMAT),
        packed=np.concatenate(chunks) if chunks else np.zeros(0, np.uint8),
        starts=np.array(starts, dtype=np.int64),
        shape=np.array(shape),
        meta=np.array(json.dumps(meta)),
    )
    return buf.getvalue()


def load_mask_layers(data: bytes) -> list:
    """Mask layers of a stack written by `save_mask_layers` (sparse `MaskLayer`s; `.mask` is full size)."""
    from medtrinity_assets.records import MaskLayer

    with np.load(io.BytesIO(data)) as z:
        shape = tuple(int(x) for x in z["shape"])
        packed = z["packed"]
        meta = json.loads(str(z["meta"]))
        starts = z["starts"] if "format" in z.files else None
    layers = []
    for i, m in enumerate(meta):
        if starts is None:  # format 1: full frames
            mask = np.unpackbits(packed[i], axis=-1, count=shape[1]).astype(bool)
            layers.append(MaskLayer(label=m["label"], mask=mask, instance=m["instance"], label_id=m["label_id"]))
            continue
        h, w = m["crop"]
        crop = np.unpackbits(packed[int(starts[i]) :], count=h * w).astype(bool).reshape(h, w)
        layers.append(MaskLayer.from_crop(m["label"], crop, tuple(m["offset"]), shape, m["instance"], m["label_id"]))
    return layers


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def encode_native(values: np.ndarray) -> bytes:
    """Native values of a displayed slice as a compressed npz (int16 when the values are whole numbers
    in range, e.g. Hounsfield units; float32 otherwise)."""
    values = np.asarray(values, dtype=np.float32)
    whole = np.isfinite(values).all() and np.array_equal(values, np.rint(values))
    small = whole and values.size and float(values.min()) >= -32768 and float(values.max()) <= 32767
    buf = io.BytesIO()
    np.savez_compressed(buf, values=values.astype(np.int16) if small else values)
    return buf.getvalue()


def decode_native(data: bytes) -> np.ndarray:
    """float32 values written by `encode_native`."""
    with np.load(io.BytesIO(data)) as z:
        return z["values"].astype(np.float32)
