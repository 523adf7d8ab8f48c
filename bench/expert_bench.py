"""Expert-model throughput: ExpertModels.predict vs a bare batched forward of the same model.

Builds, in a temp dir, a tiny random-init MONAI 2-D U-Net bundle and a YOLO11n-seg model
(from its yaml, trained 1 epoch on blobs unless --no-train-yolo), then times on the same synthetic slices:

- monai: ExpertModels.predict (pre-processing, batched forward, argmax, ROI extraction) vs
  a bare loop: stack + scale -> tensor -> net -> argmax -> numpy, same batch size;
- yolo: ExpertModels.predict (BGR conversion, ultralytics predict, ROIs) vs bare
  ``YOLO.predict`` on the same BGR arrays, same arguments and batch size.

ratio = throughput(ours) / throughput(bare) (wall time; CPU-time ratio too); goal >= 0.9. Usage:
    python bench/expert_bench.py [--device cpu|cuda] [--n 64] [--size 256] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tiny-model builders the tests use

from expert_builders import synthetic_yolo_dataset  # noqa: E402
from medtrinity_assets.records import Slice2D  # noqa: E402
from medtrinity_assets.rois import rois_from_label_map  # noqa: E402
from medtrinity_resources.experts import (  # noqa: E402
    ExpertModels,
    ExpertSpec,
    load_expert,
    prepare_ultralytics_env,
    yolo_image,
)

UNET = {
    "_target_": "monai.networks.nets.UNet",
    "spatial_dims": 2,
    "in_channels": 1,
    "out_channels": 3,
    "channels": [16, 32, 64],
    "strides": [2, 2],
    "num_res_units": 1,
}


def synthetic_slices(n: int, size: int, seed: int = 0) -> list[Slice2D]:
    """Grey slices with a few bright discs (so models see structure)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = []
    for _ in range(n):
        px = rng.integers(0, 60, (size, size)).astype(np.uint8)
        for _ in range(3):
            cy, cx, r = rng.integers(size // 8, 7 * size // 8, 2).tolist() + [int(rng.integers(size // 16, size // 6))]
            px[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 200
        out.append(Slice2D(px, []))
    return out


def fit_discs(network, slices: list[Slice2D], steps: int) -> None:
    """A few Adam steps so the random U-Net outputs blob-like label maps (bright = class 1)."""
    import torch

    if steps <= 0:
        return
    x = torch.from_numpy(np.stack([sl.pixels for sl in slices])[:, None].astype(np.float32) / 255.0)
    y = torch.from_numpy((np.stack([sl.pixels for sl in slices]) > 128).astype(np.int64))
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-2)
    network.train()
    for _ in range(steps):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(network(x), y)
        loss.backward()
        optimiser.step()
    network.eval()


def timed_pair(bare, ours, repeats: int) -> dict[str, float]:
    """Median wall and CPU seconds of `bare` and `ours`, interleaved after one warm-up each.

    CPU time (all threads of this process) is reported too: on a shared machine it is far less
    disturbed by other processes than wall time.
    """
    bare()
    ours()
    samples: dict[str, list[float]] = {"bare_s": [], "ours_s": [], "bare_cpu_s": [], "ours_cpu_s": []}
    for _ in range(repeats):
        for fn, name in ((bare, "bare"), (ours, "ours")):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            samples[f"{name}_s"].append(time.perf_counter() - wall)
            samples[f"{name}_cpu_s"].append(time.process_time() - cpu)
    out = {k: statistics.median(v) for k, v in samples.items()}
    out["ratio"] = out["bare_s"] / out["ours_s"]
    out["cpu_ratio"] = out["bare_cpu_s"] / out["ours_cpu_s"]
    return out


def bench_monai(root: Path, slices: list[Slice2D], device: str, batch: int, repeats: int, fit_steps: int) -> dict:
    import torch
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config({"net": UNET})
    torch.manual_seed(0)
    network = parser.get_parsed_content("net")
    fit_discs(network, slices[: min(8, len(slices))], fit_steps)
    from monai.bundle import init_bundle

    bundle = root / "unet2d"
    labels = {"0": "background", "1": "organ", "2": "lesion"}
    init_bundle(bundle, network=network, inference_str={"network_def": UNET},
                metadata_str={"version": "0.1.0", "network_data_format": {"outputs": {"pred": {"channel_def": labels}}}})
    spec = ExpertSpec(name="unet", kind="monai_bundle", path=str(bundle), device=device, batch_size=batch,
                      score_threshold=0.0)
    experts = ExpertModels(experts=[spec])
    net = load_expert(spec).model  # the very same module, so only the wrapper differs

    def bare() -> None:
        for start in range(0, len(slices), batch):
            chunk = slices[start : start + batch]
            x = np.stack([sl.pixels for sl in chunk])[:, None].astype(np.float32) / np.float32(255.0)
            with torch.inference_mode():
                labels = net(torch.from_numpy(x).to(device)).argmax(1).cpu().numpy()
            assert labels.shape[0] == len(chunk)

    n_rois = []

    def ours() -> None:
        out = [rois_from_label_map(lm, spec.min_area_px, spec.score_threshold) for lm in experts.predict("unet", slices)]
        n_rois.append(sum(len(r) for r in out))

    return {"model": "monai_unet2d", **timed_pair(bare, ours, repeats), "rois_per_image": n_rois[-1] / len(slices)}


def bench_yolo(root: Path, slices: list[Slice2D], device: str, batch: int, repeats: int, imgsz: int,
               train: bool, yolo_conf: float) -> dict:
    prepare_ultralytics_env(root / "ultralytics")
    from ultralytics import YOLO

    weights = root / "yolo11n-seg.pt"
    model = YOLO("yolo11n-seg.yaml")
    if train:
        data = synthetic_yolo_dataset(root / "ds", n=8)
        model.train(data=str(data), epochs=1, imgsz=64, batch=4, workers=0, device=device, plots=False,
                    val=False, project=str(root / "runs"), name="seg", exist_ok=True, verbose=False, amp=False)
        weights = root / "runs" / "seg" / "weights" / "last.pt"
    else:
        model.save(str(weights))
    conf = yolo_conf
    spec = ExpertSpec(name="yolo", kind="yolo", path=str(weights), device=device, batch_size=batch,
                      imgsz=imgsz, score_threshold=conf)
    experts = ExpertModels(experts=[spec])
    bare_model = YOLO(str(weights))
    images = [yolo_image(sl.pixels) for sl in slices]
    n_rois = []

    def bare() -> None:
        for start in range(0, len(images), batch):
            bare_model.predict(images[start : start + batch], imgsz=imgsz, conf=conf, device=device,
                               retina_masks=True, verbose=False, save=False)

    def ours() -> None:
        out = [rois_from_label_map(lm, spec.min_area_px, spec.score_threshold) for lm in experts.predict("yolo", slices)]
        n_rois.append(sum(len(r) for r in out))

    return {"model": "yolo11n_seg", **timed_pair(bare, ours, repeats), "rois_per_image": n_rois[-1] / len(slices)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--n", type=int, default=32, help="slices per run")
    parser.add_argument("--size", type=int, default=256, help="slice side in pixels")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--yolo-imgsz", type=int, default=256)
    parser.add_argument("--no-train-yolo", dest="train_yolo", action="store_false",
                        help="random-init YOLO (gives no ROIs) instead of 1 epoch on blobs")
    parser.add_argument("--yolo-conf", type=float, default=0.001, help="low, so random weights still give ROIs")
    parser.add_argument("--fit-steps", type=int, default=15, help="Adam steps fitting the U-Net to the discs")
    parser.add_argument("--only", choices=["monai", "yolo"], default=None)
    args = parser.parse_args()

    slices = synthetic_slices(args.n, args.size)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.only in (None, "monai"):
            results.append(bench_monai(root, slices, args.device, args.batch, args.repeats, args.fit_steps))
        if args.only in (None, "yolo"):
            results.append(bench_yolo(root, slices, args.device, args.batch, args.repeats, args.yolo_imgsz,
                                      args.train_yolo, args.yolo_conf))
    print(f"device={args.device} n={args.n} size={args.size} batch={args.batch} repeats={args.repeats}")
    for r in results:
        n = args.n
        print(f"{r['model']:>14}: bare {n / r['bare_s']:8.1f} img/s   ours {n / r['ours_s']:8.1f} img/s   "
              f"ratio {r['ratio']:.3f} (CPU-time ratio {r['cpu_ratio']:.3f}; goal >= 0.9)   "
              f"ROIs/image {r['rois_per_image']:.1f}")
    print(json.dumps({"device": args.device, "n": args.n, "size": args.size, "results": results}))


if __name__ == "__main__":
    main()
