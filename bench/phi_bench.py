"""PHI bench: burned-in text detection recall, false flags on clean images, and cost per image.

  python bench/phi_bench.py                          # bundled demo images, synthetic corpus (seed 0)
  python bench/phi_bench.py --variants 5 --seed 3
  python bench/phi_bench.py --images /data/kvasir/images   # manual check on a folder (verdicts only)

Corpus: every bundled demo image (through the real ingest, display-ready) with a short side of at
least 150 px, `--variants` copies each with 3 invented names / dates / IDs / times drawn in
(fonts: PIL default + DejaVu; sizes 12-30 px; high, medium, low contrast, label box, colour;
corners, edges, over the anatomy). Clean set: every bundled image without added text (the known
real burned-in text of US1_UNCR.dcm is reported apart).

Printed: detection recall (a planted box >= 50% covered by detected regions), mask coverage
(>= 95% of the planted box inside the padded mask boxes), PHI-flag recall per string and per
image, recall by kind / contrast / size / font, the share of clean images flagged, and the time
per image in process CPU seconds (all threads; robust to other load) and wall seconds, with the
ratio against a bare baseline: rapidocr's own default pipeline call (`RapidOCR()(image)`: its
default detection size, angle classifier and recognition) on the same images.
Recognised strings are never printed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import _common  # noqa: E402

_common.setup(tests=True)  # tests/: the synthetic PHI corpus the tests use

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from medtrinity_assets.catalog import list_items, load_catalog  # noqa: E402
from medtrinity_assets.ingest import load_item  # noqa: E402
from medtrinity_assets.phi import PhiPolicy, screen_pixels  # noqa: E402
from medtrinity_assets.phi.ocr import _rgb_bgr, get_engine  # noqa: E402
from medtrinity_assets.phi.pixels import find_text, padded  # noqa: E402
from phi_synthetic import KNOWN_TEXT_IMAGES, build_corpus, coverage  # noqa: E402
from medtrinity_assets.records import RejectError  # noqa: E402

ROOT = _common.REPO


def bundled() -> list[tuple[str, np.ndarray]]:
    catalog = load_catalog(ROOT / "data" / "catalog.yaml")
    out = []
    for source in catalog.sources:
        for item in list_items(catalog, source):
            try:
                out += [(f"{source.name}/{item.item_id}", sl.pixels) for sl in load_item(item, source.ingest)]
            except RejectError:
                continue
    return out


def timed(fn, *args):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn(*args)
    return out, time.process_time() - c0, time.perf_counter() - w0


def bench_synthetic(corpus, engine) -> dict:
    stats = {"strings": 0, "detected": 0, "covered": 0, "flagged": 0, "images_flagged": 0, "cpu": 0.0, "wall": 0.0}
    by = defaultdict(lambda: [0, 0])
    for im in corpus:
        regions, cpu, wall = timed(find_text, im.pixels, engine)
        stats["cpu"] += cpu
        stats["wall"] += wall
        h, w = im.pixels.shape[:2]
        boxes = [r.box for r in regions]
        pads = [padded(b, w, h, engine.settings) for b in boxes]
        stats["images_flagged"] += any(r.kinds for r in regions)
        for p in im.planted:
            hit = coverage(p.box, boxes) >= 0.5
            stats["strings"] += 1
            stats["detected"] += hit
            stats["covered"] += coverage(p.box, pads) >= 0.95
            stats["flagged"] += any(r.kinds for r in regions if coverage(r.box, [p.box]) > 0)
            for key in (f"kind={p.kind}", f"contrast={p.contrast}", f"size={p.size}", f"font={p.font}"):
                by[key][0] += hit
                by[key][1] += 1
    stats["by"] = dict(by)
    return stats


def bench_clean(images, engine) -> tuple[list[str], float, float, list[str]]:
    flagged, known, cpu, wall = [], [], 0.0, 0.0
    for name, pixels in images:
        regions, c, w = timed(find_text, pixels, engine)
        cpu, wall = cpu + c, wall + w
        if any(r.kinds for r in regions):
            (known if name in KNOWN_TEXT_IMAGES else flagged).append(name)
    return flagged, cpu, wall, known


def bare(images) -> tuple[float, float]:
    from rapidocr_onnxruntime import RapidOCR

    ocr = RapidOCR()
    cpu = wall = 0.0
    for _, pixels in images:
        _, c, w = timed(ocr, _rgb_bgr(pixels))
        cpu, wall = cpu + c, wall + w
    return cpu, wall


def folder_check(folder: Path, engine) -> None:
    """Verdicts (auto policy) for the images of a folder: regions and PHI kinds, never the text."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"))
    counts = defaultdict(int)
    for path in files:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        verdict = screen_pixels(pixels.copy(), PhiPolicy(), False, engine)
        counts[verdict.action] += 1
        print(f"  {path.name:40s} {pixels.shape[1]}x{pixels.shape[0]} regions={len(verdict.regions)} kinds={verdict.kinds} -> {verdict.action}")
    print(f"{len(files)} images: {dict(counts)}")


def main() -> int:
    ap = _common.parser(__doc__)
    ap.add_argument("--variants", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=Path, help="only run the auto policy on the images of this folder")
    args = ap.parse_args()
    engine = get_engine()
    print(f"engine: {engine.version}, threads={engine.settings.threads}")
    if args.images:
        folder_check(args.images, engine)
        return 0
    images = bundled()
    find_text(images[0][1], engine)  # warm-up (model load) outside the timings
    bases = [(n, p) for n, p in images if min(p.shape[:2]) >= 150 and n not in KNOWN_TEXT_IMAGES]
    corpus = build_corpus(bases, variants=args.variants, per_image=3, seed=args.seed)
    s = bench_synthetic(corpus, engine)
    n = s["strings"]
    print(f"\nsynthetic corpus: {len(corpus)} images ({len(bases)} bundled bases x {args.variants}), {n} planted strings")
    print(f"  detection recall        {s['detected'] / n:.3f}  ({s['detected']}/{n})")
    print(f"  mask coverage >= 95%    {s['covered'] / n:.3f}")
    print(f"  PHI-flag recall/string  {s['flagged'] / n:.3f}")
    print(f"  images flagged          {s['images_flagged'] / len(corpus):.3f}")
    for key in sorted(s["by"]):
        hit, tot = s["by"][key]
        print(f"    {key:32s} {hit / tot:.3f} ({tot})")
    flagged, cpu, wall, known = bench_clean(images, engine)
    clean = len(images) - len([n for n, _ in images if n in KNOWN_TEXT_IMAGES])
    print(f"\nclean bundled images: {clean}; flagged {len(flagged)} ({len(flagged) / clean:.1%}) {flagged}")
    print(f"  real burned-in text flagged: {known} of {list(KNOWN_TEXT_IMAGES)}")
    bcpu, bwall = bare(images)
    k = len(images)
    print(f"\ntime per image (bundled, {k} images): ours {cpu / k:.3f} CPU-s ({wall / k:.3f} s wall); "
          f"synthetic {s['cpu'] / len(corpus):.3f} CPU-s ({s['wall'] / len(corpus):.3f} s wall)")
    print(f"  bare RapidOCR()(image) default pipeline: {bcpu / k:.3f} CPU-s ({bwall / k:.3f} s wall); ratio ours/bare CPU = {cpu / bcpu:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
