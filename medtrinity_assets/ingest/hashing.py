"""Deterministic PNG encoding, pixel hashes, and the one near-duplicate search of the project.

Near duplicates are found in two steps. A 64-bit perceptual hash (imagehash.phash) proposes
candidates within `max_distance` bits, looked up by multi-index hashing (`PhashIndex`: the hash
is cut into max_distance + 1 bands, a candidate shares one band exactly, so the cost stays
near-linear). A candidate is then confirmed on pixels: both images must carry information at
the scale the hash sees (the 16 x 16 thumbnail `signature` is not flat: `INFORMATION_FLOOR`),
and their thumbnails must agree (correlation and mean difference). An all-black image is never
a near duplicate of anything (only an exact one); a sparse 16-bit image windowed to near-black
is not a near duplicate of an unrelated black frame.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

import imagehash
import numpy as np
import polars as pl
from PIL import Image

# zlib level 4: on the demo sources ~1% larger than Pillow's default 6 and about twice as fast to encode
PNG_COMPRESS_LEVEL = 4
PHASH_BITS = 64
SIGNATURE_SIDE = 16
#: thumbnail standard deviation (grey levels 0..255) below which an image is too flat to compare
INFORMATION_FLOOR = 2.0
#: pixel confirmation of a perceptual-hash candidate: thumbnail correlation and mean |difference|
MIN_CORRELATION = 0.9
MAX_MEAN_DIFFERENCE = 12.0


def _as_image(pixels: np.ndarray) -> Image.Image:
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError(f"expected uint8 (H, W) or (H, W, 3) pixels, got {pixels.dtype} {pixels.shape}")
    return Image.fromarray(np.ascontiguousarray(pixels), mode="L" if pixels.ndim == 2 else "RGB")


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of uint8 grey/RGB pixels; identical pixels always give identical bytes (no metadata chunks)."""
    buf = io.BytesIO()
    _as_image(pixels).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)
    return buf.getvalue()


def pixel_sha256(pixels: np.ndarray) -> str:
    """SHA-256 of the pixel array including its dtype and shape."""
    h = hashlib.sha256(f"{pixels.dtype.str}|{tuple(int(s) for s in pixels.shape)}|".encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()


def pixel_phash(pixels: np.ndarray) -> str:
    """64-bit perceptual hash (imagehash.phash) as 16 hex characters."""
    return str(imagehash.phash(_as_image(pixels)))


def pixel_hashes(pixels: np.ndarray) -> tuple[str, str]:
    """(sha256 of pixels incl. shape/dtype, perceptual hash hex)."""
    return pixel_sha256(pixels), pixel_phash(pixels)


def image_signature(image: np.ndarray | Image.Image) -> str:
    """16 x 16 grey thumbnail (box filter) as 512 hex characters: the pixel-level confirmation data."""
    img = image if isinstance(image, Image.Image) else _as_image(image)
    thumb = img.convert("L").resize((SIGNATURE_SIDE, SIGNATURE_SIDE), Image.Resampling.BOX)
    return np.asarray(thumb, dtype=np.uint8).tobytes().hex()


def image_fingerprint(data: bytes) -> tuple[str, str]:
    """(perceptual hash, signature) of encoded image bytes (any format Pillow reads)."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return str(imagehash.phash(img)), image_signature(img)


def _thumb(signature: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(signature), dtype=np.uint8).astype(np.float32)


def informative(signature: str | None) -> bool:
    """True when the thumbnail is not flat (its std reaches INFORMATION_FLOOR)."""
    return bool(signature) and float(_thumb(signature).std()) >= INFORMATION_FLOOR


def signatures_agree(a: str | None, b: str | None) -> bool:
    """Pixel confirmation of a candidate pair: both informative, correlated and close."""
    if not (informative(a) and informative(b)) or len(a) != len(b):  # type: ignore[arg-type]
        return False
    ta, tb = _thumb(a), _thumb(b)  # type: ignore[arg-type]
    if float(np.abs(ta - tb).mean()) > MAX_MEAN_DIFFERENCE:
        return False
    return float(np.corrcoef(ta, tb)[0, 1]) >= MIN_CORRELATION


def hamming(a: int, b: int) -> int:
    """Number of differing bits of two integers (hash values)."""
    return (a ^ b).bit_count()


def phash_distance(phash_a: str, phash_b: str) -> int:
    """Hamming distance of two hex perceptual hashes of the same length."""
    if len(phash_a) != len(phash_b):
        raise ValueError("perceptual hashes of different lengths")
    return hamming(int(phash_a, 16), int(phash_b, 16))


def near_duplicate(phash_a: str, phash_b: str, max_distance: int = 4) -> bool:
    """True when two perceptual hashes differ in at most `max_distance` bits (hash test only)."""
    return phash_distance(phash_a, phash_b) <= max_distance


def hash_bands(value: int, n_bits: int, n_bands: int) -> list[tuple[int, int]]:
    """(band index, band value) pieces; two hashes within n_bands-1 bits share at least one piece."""
    out, start = [], 0
    for b in range(n_bands):
        width = n_bits // n_bands + (1 if b < n_bits % n_bands else 0)
        out.append((b, (value >> start) & ((1 << width) - 1)))
        start += width
    return out


class PhashIndex:
    """Multi-index hashing over 64-bit perceptual hashes: every entry within `max_distance` bits."""

    def __init__(self, max_distance: int) -> None:
        if not 0 <= max_distance < PHASH_BITS:
            raise ValueError(f"max_distance must be in [0, {PHASH_BITS}), got {max_distance}")
        self.max_distance = max_distance
        self.n_bands = max_distance + 1
        self.values: list[int] = []
        self._bands: dict[tuple[int, int], list[int]] = {}

    def add(self, phash: str) -> int:
        value = int(phash, 16)
        idx = len(self.values)
        self.values.append(value)
        for key in hash_bands(value, PHASH_BITS, self.n_bands):
            self._bands.setdefault(key, []).append(idx)
        return idx

    def query(self, phash: str) -> list[tuple[int, int]]:
        """(entry index, distance) of every entry within max_distance, nearest first."""
        value = int(phash, 16)
        seen: set[int] = set()
        hits = []
        for key in hash_bands(value, PHASH_BITS, self.n_bands):
            for idx in self._bands.get(key, ()):
                if idx in seen:
                    continue
                seen.add(idx)
                d = hamming(value, self.values[idx])
                if d <= self.max_distance:
                    hits.append((idx, d))
        return sorted(hits, key=lambda t: (t[1], t[0]))


def _column(records: pl.DataFrame, *names: str) -> str | None:
    for name in names:
        if name in records.columns:
            return name
    return None


def _required(records: pl.DataFrame, *names: str) -> str:
    col = _column(records, *names)
    if col is None:
        raise KeyError(f"dedup_flags needs one of the columns {names}; got {records.columns}")
    return col


def dedup_flags(
    records: pl.DataFrame, max_distance: int = 4, confirm: Callable[[int, int], bool] | None = None
) -> pl.DataFrame:
    """Mark exact and near duplicates; the first occurrence (row order) is kept.

    `records` has ``image_id``, ``sha256``/``image_sha256``, ``phash``/``image_phash`` and,
    optionally, ``signature``/``image_signature``. Returns the rows with ``exact_duplicate``,
    ``near_duplicate`` (bool), ``duplicate_of`` (image_id of the kept image, null when kept) and
    ``phash_distance`` (null when kept). Near duplicates are looked up among kept images only,
    so chains do not form. A hash candidate counts only when confirmed: by `confirm(row, kept_row)`
    when given, else by the signatures (`signatures_agree`) when the column is there, else by
    the hash alone (hash-only rows, e.g. test tables without pixels).
    """
    sha_col = _required(records, "sha256", "image_sha256")
    ph_col = _required(records, "phash", "image_phash")
    sig_col = _column(records, "signature", "image_signature")
    ids = records["image_id"].cast(pl.Utf8).to_list()
    shas = records[sha_col].cast(pl.Utf8).to_list()
    phashes = records[ph_col].cast(pl.Utf8).to_list()
    sigs = records[sig_col].cast(pl.Utf8).to_list() if sig_col else None
    if confirm is None and sigs is not None:
        confirm = lambda row, other: signatures_agree(sigs[row], sigs[other])  # noqa: E731
    index = PhashIndex(max_distance)
    kept_rows: list[int] = []  # index entry -> row
    first_by_sha: dict[str, str] = {}
    exact, near, dup_of, dist = [], [], [], []
    for row, (image_id, sha, ph) in enumerate(zip(ids, shas, phashes)):
        if sha and sha in first_by_sha:
            exact.append(True), near.append(False), dup_of.append(first_by_sha[sha]), dist.append(0)
            continue
        if sha:
            first_by_sha[sha] = image_id
        match = None
        if ph and len(ph) * 4 == PHASH_BITS:
            for entry, d in index.query(ph):
                if confirm is None or confirm(row, kept_rows[entry]):
                    match = (kept_rows[entry], d)
                    break
            if match is None:
                index.add(ph)
                kept_rows.append(row)
        if match is not None:
            exact.append(False), near.append(True), dup_of.append(ids[match[0]]), dist.append(match[1])
        else:
            exact.append(False), near.append(False), dup_of.append(None), dist.append(None)
    return records.with_columns(
        pl.Series("exact_duplicate", exact, dtype=pl.Boolean),
        pl.Series("near_duplicate", near, dtype=pl.Boolean),
        pl.Series("duplicate_of", dup_of, dtype=pl.Utf8),
        pl.Series("phash_distance", dist, dtype=pl.Int32),
    )
