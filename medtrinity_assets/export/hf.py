"""Hugging Face-native Parquet: images embedded as the `datasets` ``Image`` feature, two views.

An ``Image`` column is a struct ``{bytes: binary, path: string}`` and the Parquet schema carries
the ``huggingface`` metadata key (``{"info": {"features": {...}}}``) that `datasets` reads back,
so ``datasets.load_dataset("parquet", data_files=...)`` gives ``ds[0]["image"]`` as a PIL image
from any working directory (the bytes travel inside the file; ``path`` is the file's path
relative to the release root) and the Hub viewer shows thumbnails. Row groups are kept small
(`ROW_GROUP_SIZE`) as the Hub recommends for image datasets, so the viewer can page them.

Views (one Parquet file per split each, see `view_path`):

- ``full``: every column of the release schema; ``image`` (clean) and ``overlay`` (ROI contour)
  embedded;
- ``minimal``: the MedTrinity-25M layout ``image, id, caption, source`` (clean image, record
  id, multigranular caption, source dataset).

`datasets` is not needed to write these files (only pyarrow); the tests load them with it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

IMAGE_COLUMNS = ("image", "overlay")
HF_IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
ROW_GROUP_SIZE = 64
VIEWS = ("full", "minimal")

#: (column, meaning) of the minimal view; the column types are in `minimal_frame`
MINIMAL_COLUMNS: list[tuple[str, str]] = [
    ("image", "clean image (HF `Image`: PNG bytes + path relative to the release root)"),
    ("id", "record id (`sample_id` of the full view)"),
    ("caption", "the multigranular description"),
    ("source", "source dataset name in the catalog (`dataset` of the full view)"),
]


def view_path(view: str, split: str) -> str:
    """Release-relative path of one view's Parquet file for one split."""
    return f"data/{view}/{split}.parquet"


def minimal_frame(df: pl.DataFrame) -> pl.DataFrame:
    """The MedTrinity-compatible columns of release records (``image`` still a path here)."""
    return df.select(
        pl.col("image").cast(pl.Utf8),
        pl.col("sample_id").cast(pl.Utf8).alias("id"),
        pl.col("caption").cast(pl.Utf8),
        pl.col("dataset").cast(pl.Utf8).alias("source"),
    )


def _image_array(paths: list[str | None], read: Callable[[str], bytes]) -> pa.Array:
    cache: dict[str, bytes] = {}
    rows = []
    for p in paths:
        if p is None:
            rows.append(None)
            continue
        if p not in cache:
            cache[p] = read(p)
        rows.append({"bytes": cache[p], "path": p})
    return pa.array(rows, type=HF_IMAGE_TYPE)


def _small(t: pa.DataType) -> pa.DataType:
    """Arrow type with 32-bit offsets (string, binary, list) as `datasets` writes them."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list(t) or pa.types.is_list_view(t):
        return pa.list_(_small(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _small(f.type)) for f in t])
    return t


def hf_table(df: pl.DataFrame, read: Callable[[str], bytes]) -> pa.Table:
    """Arrow table of `df` with its path columns in `IMAGE_COLUMNS` replaced by embedded images,
    and the ``huggingface`` features metadata naming them ``Image``."""
    table = df.to_arrow()
    table = table.cast(pa.schema([pa.field(f.name, _small(f.type)) for f in table.schema]))
    features = {}
    for name in IMAGE_COLUMNS:
        if name in df.columns:
            i = table.schema.get_field_index(name)
            table = table.set_column(i, pa.field(name, HF_IMAGE_TYPE), _image_array(df[name].to_list(), read))
            features[name] = {"_type": "Image"}
    meta = dict(table.schema.metadata or {})
    meta[b"huggingface"] = json.dumps({"info": {"features": features}}).encode("utf-8")
    return table.replace_schema_metadata(meta)


def hf_parquet(df: pl.DataFrame, read: Callable[[str], bytes]) -> tuple[bytes, int]:
    """Parquet bytes (zstd, small row groups) of `hf_table` (identical inputs give identical bytes),
    and the table's Arrow size in bytes (the card's ``num_bytes``, as `datasets` counts it)."""
    table = hf_table(df, read)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", row_group_size=ROW_GROUP_SIZE, write_statistics=True)
    return buf.getvalue(), table.nbytes


def image_paths(df: pl.DataFrame) -> pl.DataFrame:
    """Records read from a view with their ``Image`` structs replaced by the paths (bytes dropped)."""
    return df.with_columns(
        pl.col(c).struct.field("path").alias(c) for c in IMAGE_COLUMNS if c in df.columns and isinstance(df.schema[c], pl.Struct)
    )


# ----------------------------------------------------------------------------- card features


def _feature(dtype: pl.DataType) -> dict:
    """Dataset-card YAML feature (``dtype`` / ``list`` / ``struct``) of a polars dtype."""
    if isinstance(dtype, pl.List):
        inner = _feature(dtype.inner)
        return {"list": inner.get("dtype", inner)}
    if isinstance(dtype, pl.Struct):
        return {"struct": [{"name": f.name, **_feature(f.dtype)} for f in dtype.fields]}
    names = {
        pl.Utf8: "string",
        pl.Boolean: "bool",
        pl.Int8: "int8",
        pl.Int16: "int16",
        pl.Int32: "int32",
        pl.Int64: "int64",
        pl.UInt32: "uint32",
        pl.Float32: "float32",
        pl.Float64: "float64",
    }
    for t, name in names.items():
        if dtype == t:
            return {"dtype": name}
    raise TypeError(f"no dataset-card feature for {dtype}")


def card_features(schema: pl.Schema) -> list[dict]:
    """``dataset_info.features`` for a view whose `IMAGE_COLUMNS` hold images."""
    return [{"name": n, "dtype": "image"} if n in IMAGE_COLUMNS else {"name": n, **_feature(t)} for n, t in schema.items()]
