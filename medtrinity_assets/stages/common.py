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

from medtrinity_assets.phi import scrub_text
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


def save_mask_layers(layers: list, shape: tuple[int, int]) -> bytes:
    """Pack boolean mask layers (+ labels) into a compressed npz."""
    buf = io.BytesIO()
    if layers:
        stack = np.stack([l.mask.astype(bool) for l in layers])
        packed = np.packbits(stack, axis=-1)
    else:
        packed = np.zeros((0, shape[0], (shape[1] + 7) // 8), dtype=np.uint8)
    meta = [{"label": l.label, "instance": l.instance, "label_id": l.label_id} for l in layers]
    np.savez_compressed(buf, packed=packed, shape=np.array(shape), meta=np.array(json.dumps(meta)))
    return buf.getvalue()


def load_mask_layers(data: bytes) -> list:
    from medtrinity_assets.records import MaskLayer

    with np.load(io.BytesIO(data)) as z:
        shape = tuple(int(x) for x in z["shape"])
        packed = z["packed"]
        meta = json.loads(str(z["meta"]))
    layers = []
    for i, m in enumerate(meta):
        mask = np.unpackbits(packed[i], axis=-1, count=shape[1]).astype(bool)
        layers.append(MaskLayer(label=m["label"], mask=mask, instance=m["instance"], label_id=m["label_id"]))
    return layers


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))
