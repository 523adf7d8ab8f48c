"""Ingestion bench: 2D images/s per core through `load_item` + `encode_png`, against a bare loop.

  python bench/ingest_bench.py                  # every item of data/catalog.yaml (the bundled demo sources)
  python bench/ingest_bench.py --repeats 5

For each catalog item that ingests, the bare baseline decodes the same file with the plain
library call (pydicom / SimpleITK / Pillow / tifffile), takes the same number of slices (evenly
spaced), scales min-max to uint8, resizes with Pillow to the same longest side and encodes PNG
(same zlib level as `encode_png`).
It does no format sniffing, guards, orientation, windowing, mask layers or meta, so the ratio
prices all of that. Ratio = ours images/s / bare images/s (goal >= 0.9), printed twice:
with the items' GT masks (bare: the mask files decoded and nearest-resized too) and with the
masks stripped from the items (bare: images only). Single thread (SimpleITK and BLAS pinned to
one thread), timed in process CPU seconds (images per CPU-second = per core, robust to other
load on the machine), best of --repeats, loops interleaved. Peak RSS is the process maximum
(resource.getrusage).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
import SimpleITK as sitk  # noqa: E402
import tifffile  # noqa: E402
from PIL import Image  # noqa: E402

from medtrinity_assets.catalog import list_items, load_catalog  # noqa: E402
from medtrinity_assets.ingest import encode_png, load_item  # noqa: E402
from medtrinity_assets.ingest.hashing import PNG_COMPRESS_LEVEL  # noqa: E402
from medtrinity_assets.records import RejectError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- bare baseline


def bare_decode(path: str, fmt: str) -> np.ndarray:
    """(planes, H, W[, C]) with the plain library call for the format."""
    if fmt == "dicom":
        arr = pydicom.dcmread(path).pixel_array
        frames = int(pydicom.dcmread(path, stop_before_pixels=True).get("NumberOfFrames", 1) or 1)
        return arr if frames > 1 else arr[None]
    if fmt in ("nifti", "nrrd", "mha"):
        return sitk.GetArrayFromImage(sitk.ReadImage(path))
    if fmt == "tiff":
        arr = tifffile.imread(path)
        return arr if arr.ndim == 3 and arr.shape[-1] not in (3, 4) else arr[None]
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB" if img.mode not in ("L", "I;16", "I") else img.mode))[None]


def bare_to_png(plane: np.ndarray, max_side: int) -> bytes:
    lo, hi = float(plane.min()), float(plane.max())
    u8 = ((plane.astype(np.float32) - lo) * (255.0 / max(hi - lo, 1e-6))).astype(np.uint8)
    img = Image.fromarray(u8)
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        img = img.resize(
            (max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BILINEAR
        )
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)  # same zlib level as encode_png
    return buf.getvalue()


def bare_mask_fmt(path: str) -> str:
    low = path.lower()
    return "nifti" if low.endswith((".nii", ".nii.gz")) else "tiff" if low.endswith((".tif", ".tiff")) else "png"


def bare_item(path: str, fmt: str, n_slices: int, max_side: int, mask_paths: tuple[str, ...] = ()) -> int:
    planes = bare_decode(path, fmt)
    picks = (
        np.linspace(0, planes.shape[0] - 1, n_slices).round().astype(int) if n_slices > 1 else [planes.shape[0] // 2]
    )
    masks = [bare_decode(m, bare_mask_fmt(m)) for m in mask_paths]
    for k in picks:
        png = bare_to_png(planes[k], max_side)
        size = Image.open(io.BytesIO(png)).size
        for m in masks:  # nearest-neighbour to the output size, like any mask handling must
            Image.fromarray(np.ascontiguousarray(m[min(k, m.shape[0] - 1)]).astype(np.uint8)).resize(
                size, Image.Resampling.NEAREST
            )
    return len(picks)


# --------------------------------------------------------------------------- ours


def ours_item(item, policy) -> int:
    slices = load_item(item, policy)
    for sl in slices:
        encode_png(sl.pixels)
    return len(slices)


def timed(fn, *args) -> tuple[float, int]:
    """CPU seconds of the process (one thread), so that other load on the machine does not count."""
    t0 = time.process_time()
    n = fn(*args)
    return time.process_time() - t0, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", default=str(ROOT / "data" / "catalog.yaml"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)

    catalog = load_catalog(args.catalog)
    work = []  # (item, policy, n_slices)
    rejected = []
    for source in catalog.sources:
        for item in list_items(catalog, source):
            try:
                n = len(load_item(item, source.ingest))  # warm-up + slice count
            except RejectError as exc:
                rejected.append(f"{item.dataset}/{item.item_id}: {exc.reason}")
                continue
            work.append((item, source.ingest, n))
    n_images = sum(n for _, _, n in work)
    no_masks = [(replace(item, masks=()), policy, n) for item, policy, n in work]

    def run_ours(items) -> tuple[float, dict]:
        per_fmt: dict[str, float] = defaultdict(float)
        total = 0.0
        for item, policy, _ in items:
            dt, _ = timed(ours_item, item, policy)
            per_fmt[item.format] += dt
            total += dt
        return total, per_fmt

    def run_bare(with_masks: bool) -> tuple[float, dict]:
        per_fmt: dict[str, float] = defaultdict(float)
        total = 0.0
        for item, policy, n in work:
            masks = tuple(m.path for m in item.masks) if with_masks else ()
            dt, _ = timed(bare_item, item.image_path, item.format, n, policy.output.max_side, masks)
            per_fmt[item.format] += dt
            total += dt
        return total, per_fmt

    runs = {
        "bare": lambda: run_bare(False),
        "bare_masks": lambda: run_bare(True),
        "ours": lambda: run_ours(work),
        "ours_nomask": lambda: run_ours(no_masks),
    }
    best = {name: (float("inf"), {}) for name in runs}
    for _ in range(args.repeats):  # interleaved so machine drift hits every loop alike
        for name, fn in runs.items():
            result = fn()
            if result[0] < best[name][0]:
                best[name] = result

    rate = {name: n_images / t for name, (t, _) in best.items()}
    print(
        f"items: {len(work)} ingested ({n_images} 2D images, {sum(len(i.masks) for i, _, _ in work)} mask files), "
        f"{len(rejected)} rejected: {rejected}"
    )
    print(f"bare, images only           : {rate['bare']:8.1f} images/s per core")
    print(f"bare, images + mask files   : {rate['bare_masks']:8.1f} images/s per core")
    print(f"load_item + encode_png      : {rate['ours']:8.1f} images/s per core  (with GT masks)")
    print(f"load_item + encode_png      : {rate['ours_nomask']:8.1f} images/s per core  (masks stripped)")
    print(f"ratio, with masks           : {rate['ours'] / rate['bare_masks']:.3f}   (goal >= 0.9)")
    print(f"ratio, without masks        : {rate['ours_nomask'] / rate['bare']:.3f}   (goal >= 0.9)")
    print(f"ratio, ours with masks vs bare images only: {rate['ours'] / rate['bare']:.3f}")
    counts: dict[str, int] = defaultdict(int)
    for item, _, n in work:
        counts[item.format] += n
    print("per format, with masks (images, ours s / bare s):")
    for fmt in sorted(counts):
        ours_t, bare_t = best["ours"][1].get(fmt, 0.0), best["bare_masks"][1].get(fmt, 0.0)
        print(f"  {fmt:6s} {counts[fmt]:4d}  {ours_t:7.3f} / {bare_t:7.3f}  ratio {bare_t / max(ours_t, 1e-9):.2f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peak RSS: {peak_mb:.0f} MiB (whole process: imports, catalog, both loops)")


if __name__ == "__main__":
    main()
