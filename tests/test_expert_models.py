"""ExpertModels: real load + inference of tiny MONAI bundles (2-D, 3-D) and YOLO models, on CPU.

Random or one-epoch weights give arbitrary ROIs, so the tests check the flow against a bare
forward of the same weights on the same inputs, the origin strings, shapes, the load-once cache
and routing.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import torch

from medtrinity_assets.records import RejectError, Slice2D
from medtrinity_assets.rois import box_from_mask
from expert_builders import build_network, synthetic_yolo_dataset, write_monai_bundle
from medtrinity_assets.rois import rois_from_label_map
from medtrinity_resources.experts import (
    GPU_TAG,
    ExpertConfigError,
    ExpertModels,
    ExpertSpec,
    RouteRule,
    clear_model_cache,
    load_expert,
    load_expert_config,
    model_load_count,
    prepare_ultralytics_env,
)
from medtrinity_resources.experts.yolo import binary_masks

UNET_2D = {
    "_target_": "monai.networks.nets.UNet",
    "spatial_dims": 2,
    "in_channels": 1,
    "out_channels": 3,
    "channels": [4, 8],
    "strides": [2],
    "num_res_units": 0,
}
UNET_3D = {**UNET_2D, "spatial_dims": 3, "out_channels": 2}
LABELS_2D = ["background", "liver", "lesion"]


def sha12(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    torch.manual_seed(0)
    b2 = write_monai_bundle(root / "unet2d", UNET_2D, build_network(UNET_2D).state_dict(), LABELS_2D)
    b3 = write_monai_bundle(
        root / "unet3d", UNET_3D, build_network(UNET_3D).state_dict(), ["background", "kidney"], roi_size=[16, 16, 4]
    )
    return {"2d": b2, "3d": b3}


@pytest.fixture(scope="module")
def yolo_weights(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("yolo")
    prepare_ultralytics_env(root / "config")
    from ultralytics import YOLO

    data = synthetic_yolo_dataset(root / "ds")
    seg = YOLO("yolo11n-seg.yaml")
    seg.train(
        data=str(data), epochs=1, imgsz=64, batch=4, workers=0, device="cpu", plots=False, val=False,
        project=str(root / "runs"), name="seg", exist_ok=True, verbose=False, amp=False,
    )
    seg_pt = root / "runs" / "seg" / "weights" / "last.pt"
    detect = YOLO("yolo11n.yaml")  # untrained detector: exercises the box-only path
    detect_pt = root / "detect.pt"
    detect.save(str(detect_pt))
    return {"seg": seg_pt, "detect": detect_pt}


def predict_rois(experts: ExpertModels, name: str, slices: list[Slice2D]) -> list[list]:
    """The resource's label maps turned into ROIs, as the roi_masks stage does."""
    spec = experts.spec(name)
    return [rois_from_label_map(lm, spec.min_area_px, spec.score_threshold) for lm in experts.predict(name, slices)]


def grey_slices(shapes, seed=0) -> list[Slice2D]:
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        px = rng.integers(0, 60, shape, dtype=np.uint8)
        h, w = shape[:2]
        px[h // 4 : h // 2, w // 3 : 2 * w // 3] = 230  # a bright blob
        out.append(Slice2D(px, []))
    return out


def assert_roi_basics(rois, sl: Slice2D, origin: str, labels: set[str]) -> None:
    for roi in rois:
        assert roi.origin == origin and roi.label in labels
        assert roi.score is not None and 0.0 <= roi.score <= 1.0
        assert roi.mask.shape == (sl.height, sl.width) and roi.mask.dtype == bool
        assert roi.bbox == box_from_mask(roi.mask)


def class_union(rois, label: str, shape) -> np.ndarray:
    out = np.zeros(shape, bool)
    for roi in rois:
        if roi.label == label:
            out |= roi.mask
    return out


# ------------------------------------------------------------------ MONAI


def test_monai_2d_bundle_matches_bare_forward_and_loads_once(bundles):
    clear_model_cache()
    spec = ExpertSpec(
        name="unet2d", kind="monai_bundle", path=str(bundles["2d"]), device="cpu",
        batch_size=2, score_threshold=0.0, min_area_px=1,
    )
    experts = ExpertModels(experts=[spec])
    slices = grey_slices([(48, 40), (48, 40), (48, 40), (30, 50)])
    rgb = np.stack([slices[0].pixels] * 3, axis=2)
    slices.append(Slice2D(rgb, []))
    out = predict_rois(experts, "unet2d", slices)
    origin = f"model:unet2d@{sha12(bundles['2d'] / 'models' / 'model.pt')}"
    assert len(out) == len(slices) and sum(len(r) for r in out) > 0
    net = build_network(UNET_2D)
    net.load_state_dict(torch.load(bundles["2d"] / "models" / "model.pt", weights_only=True))
    net.eval()
    for sl, rois in zip(slices, out):
        assert_roi_basics(rois, sl, origin, {"liver", "lesion"})
        grey = sl.pixels if sl.pixels.ndim == 2 else sl.pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114])
        x = np.asarray(grey, np.float32)[None, None] / 255.0
        h, w = x.shape[-2:]
        x = np.pad(x, ((0, 0), (0, 0), (0, (-h) % 16), (0, (-w) % 16)))
        with torch.no_grad():
            expected = net(torch.from_numpy(x))[0, :, :h, :w].argmax(0).numpy()
        for class_id, label in ((1, "liver"), (2, "lesion")):
            assert np.array_equal(class_union(rois, label, (h, w)), expected == class_id)
    assert np.array_equal(
        class_union(out[0], "liver", (48, 40)), class_union(out[4], "liver", (48, 40))
    )  # RGB input is converted to the grey it came from
    experts.predict("unet2d", slices[:2])
    ExpertModels(experts=[spec]).predict("unet2d", slices[:1])  # another resource instance, same process
    assert model_load_count() == 1
    os.utime(bundles["2d"] / "models" / "model.pt", ns=(1, 1))  # new weights file -> reload
    experts.predict("unet2d", slices[:1])
    assert model_load_count() == 2


def test_monai_3d_bundle_sliding_window(bundles):
    from monai.inferers import sliding_window_inference

    spec = ExpertSpec(
        name="unet3d", kind="monai_bundle", path=str(bundles["3d"]), device="cpu", spatial_dims=3,
        score_threshold=0.0, min_area_px=1,
    )
    experts = ExpertModels(experts=[spec])
    slices = grey_slices([(24, 20)] * 5, seed=3)
    assert load_expert(spec).roi_size == (16, 16, 4)  # read from configs/inference.json inferer
    out = predict_rois(experts, "unet3d", slices)
    assert len(out) == 5
    origin = f"model:unet3d@{sha12(bundles['3d'] / 'models' / 'model.pt')}"
    net = build_network(UNET_3D)
    net.load_state_dict(torch.load(bundles["3d"] / "models" / "model.pt", weights_only=True))
    net.eval()
    volume = np.stack([sl.pixels for sl in slices], axis=-1).astype(np.float32)[None, None] / 255.0
    with torch.no_grad():
        expected = sliding_window_inference(torch.from_numpy(volume), (16, 16, 4), 4, net, overlap=0.25)
    expected = expected[0].argmax(0).numpy()
    for d, (sl, rois) in enumerate(zip(slices, out)):
        assert_roi_basics(rois, sl, origin, {"kidney"})
        assert np.array_equal(class_union(rois, "kidney", (24, 20)), expected[..., d] == 1)
    with pytest.raises(RejectError):
        experts.predict("unet3d", grey_slices([(24, 20), (20, 24)]))


# ------------------------------------------------------------------ YOLO


def test_yolo_seg_model_predicts_through_resource(yolo_weights):
    from ultralytics import YOLO

    spec = ExpertSpec(
        name="blobs", kind="yolo", path=str(yolo_weights["seg"]), device="cpu", imgsz=64,
        score_threshold=0.001, batch_size=2,
    )
    experts = ExpertModels(experts=[spec])
    slices = grey_slices([(64, 64), (64, 64), (48, 80)], seed=5)
    slices.append(Slice2D(np.stack([slices[0].pixels] * 3, axis=2), []))
    before = model_load_count()
    out = predict_rois(experts, "blobs", slices)
    out_again = predict_rois(experts, "blobs", slices)
    assert model_load_count() == before + 1  # loaded once for two calls
    origin = f"model:blobs@{sha12(yolo_weights['seg'])}"
    bgr = [  # what ultralytics expects for arrays: BGR, 3 channels
        np.repeat(sl.pixels[:, :, None], 3, 2) if sl.pixels.ndim == 2 else sl.pixels[:, :, ::-1].copy() for sl in slices
    ]
    bare = YOLO(str(yolo_weights["seg"])).predict(
        bgr,
        imgsz=64, conf=0.001, device="cpu", retina_masks=True, verbose=False,
    )
    assert len(out) == len(slices)
    for sl, rois, again, ref in zip(slices, out, out_again, bare):
        assert_roi_basics(rois, sl, origin, {"blob"})
        # an instance label map keeps every instance that still owns a pixel (the best one wins overlaps)
        ref_scores = sorted(ref.boxes.conf.tolist(), reverse=True)
        assert 0 < len(rois) <= len(ref_scores) if ref_scores else rois == []
        assert all(any(abs(r.score - c) < 1e-5 for c in ref_scores) for r in rois)
        if ref_scores:
            assert max(r.score for r in rois) == pytest.approx(ref_scores[0], abs=1e-5)
        assert [r.bbox for r in rois] == [r.bbox for r in again]
        if ref.masks is not None and len(rois):
            assert ref.masks.data.shape[-2:] == (sl.height, sl.width)
            assert sum(int(r.mask.sum()) for r in rois) > 0


def test_yolo_detect_model_gives_box_masks(yolo_weights):
    spec = ExpertSpec(
        name="det", kind="yolo", path=str(yolo_weights["detect"]), device="cpu", imgsz=64,
        score_threshold=0.0, label_map={str(i): f"finding{i}" for i in range(80)},
    )
    slices = grey_slices([(64, 64), (40, 72)], seed=7)
    out = predict_rois(ExpertModels(experts=[spec]), "det", slices)
    assert len(out) == 2 and sum(len(r) for r in out) > 0  # untrained head, conf 0: boxes appear
    for sl, rois in zip(slices, out):
        assert_roi_basics(rois, sl, f"model:det@{sha12(yolo_weights['detect'])}", {f"finding{i}" for i in range(80)})
        for roi in rois:
            x0, y0, x1, y1 = roi.bbox
            assert roi.mask[y0 : y1 + 1, x0 : x1 + 1].all()  # no seg head: the mask is the box


# ------------------------------------------------------------------ routing, config, tags


def test_wrapped_ddp_checkpoint_loads(bundles, tmp_path):
    import shutil

    wrapped = tmp_path / "wrapped"
    shutil.copytree(bundles["2d"], wrapped)
    state = torch.load(wrapped / "models" / "model.pt", weights_only=True)
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, wrapped / "models" / "model.pt")
    slices = grey_slices([(32, 32)], seed=9)
    specs = [
        ExpertSpec(name=n, kind="monai_bundle", path=str(p), device="cpu", min_area_px=1, score_threshold=0.0)
        for n, p in (("plain", bundles["2d"]), ("wrapped", wrapped))
    ]
    experts = ExpertModels(experts=specs)
    plain, wrapped_out = predict_rois(experts, "plain", slices)[0], predict_rois(experts, "wrapped", slices)[0]
    assert [(r.label, r.bbox, r.score) for r in plain] == [(r.label, r.bbox, r.score) for r in wrapped_out]


def test_routing_first_match_wins(bundles):
    experts = ExpertModels(
        experts=[
            ExpertSpec(name="liver_ct", kind="monai_bundle", path=str(bundles["2d"]), device="cpu"),
            ExpertSpec(name="ct_any", kind="monai_bundle", path=str(bundles["2d"]), device="cpu"),
            ExpertSpec(name="nodule", kind="monai_bundle", path=str(bundles["2d"]), device="cpu"),
        ],
        routing=[
            RouteRule(modality="CT", organ="liver", expert="liver_ct"),
            RouteRule(modality="CT", expert="ct_any"),
            RouteRule(modality="*", label="nodule", expert="nodule"),
        ],
    )
    assert experts.route("CT", ["Liver", "spleen"]) == "liver_ct"
    assert experts.route("ct", ["lung"]) == "ct_any"
    assert experts.route("X-ray", [], ["Nodule"]) == "nodule"
    assert experts.route("MRI", ["brain"]) is None
    assert ExpertModels().route("CT") is None
    broken = ExpertModels(routing=[RouteRule(modality="CT", expert="missing")])
    with pytest.raises(ExpertConfigError):
        broken.route("CT")


def test_config_and_input_errors(bundles, tmp_path):
    experts = ExpertModels(
        experts=[
            ExpertSpec(name="ok", kind="monai_bundle", path=str(bundles["2d"]), device="cpu"),
            ExpertSpec(name="empty", kind="monai_bundle", path=str(tmp_path), device="cpu"),
            ExpertSpec(name="yolo3d", kind="yolo", path=str(tmp_path / "x.pt"), spatial_dims=3),
        ]
    )
    with pytest.raises(ExpertConfigError):
        experts.predict("nope", grey_slices([(8, 8)]))
    with pytest.raises(ExpertConfigError):
        experts.predict("empty", grey_slices([(8, 8)]))
    with pytest.raises(ExpertConfigError):
        experts.predict("yolo3d", grey_slices([(8, 8)]))
    with pytest.raises(RejectError) as err:
        experts.predict("ok", [Slice2D(np.zeros((8, 8), np.float32), [])])
    assert err.value.reason == "bad_pixels"
    assert experts.predict("ok", []) == []
    if not torch.cuda.is_available():
        cuda = ExpertModels(experts=[ExpertSpec(name="g", kind="monai_bundle", path=str(bundles["2d"]), device="cuda")])
        with pytest.raises(ExpertConfigError):
            cuda.predict("g", grey_slices([(8, 8)]))


def test_gpu_tags():
    assert GPU_TAG == "medtrinity/gpu"
    cpu_only = ExpertModels(experts=[ExpertSpec(name="c", kind="yolo", path="x.pt", device="cpu")])
    assert cpu_only.uses_gpu is False and cpu_only.gpu_tags() == {}
    cuda = ExpertModels(experts=[ExpertSpec(name="g", kind="yolo", path="x.pt", device="cuda")])
    assert cuda.uses_gpu is True and cuda.gpu_tags() == {GPU_TAG: "true"}


def test_resource_inside_dagster(bundles):
    @dg.asset
    def expert_roi_count(experts: ExpertModels) -> int:
        return sum(len(r) for r in predict_rois(experts, "unet2d", grey_slices([(32, 32)])))

    resource = ExpertModels(
        experts=[ExpertSpec(name="unet2d", kind="monai_bundle", path=str(bundles["2d"]), device="cpu", min_area_px=1,
                            score_threshold=0.0)]
    )
    result = dg.materialize([expert_roi_count], resources={"experts": resource})
    assert result.success
    assert result.output_for_node("expert_roi_count") == sum(
        len(r) for r in predict_rois(resource, "unet2d", grey_slices([(32, 32)]))
    )


def test_load_expert_config_yaml(bundles, tmp_path):
    (tmp_path / "bundles").symlink_to(bundles["2d"].parent)
    config = tmp_path / "experts.yaml"
    config.write_text(
        "experts:\n"
        "  - {name: unet2d, kind: monai_bundle, path: bundles/unet2d, labels: [background, liver, lesion]}\n"
        "  - {name: unet3d, kind: monai_bundle, path: bundles/unet3d, spatial_dims: 3, device: cpu}\n"
        "routing:\n"
        "  - {modality: CT, organ: liver, expert: unet2d}\n"
    )
    experts = load_expert_config(config, default_device="cpu")
    assert experts.spec("unet2d").path == str((tmp_path / "bundles" / "unet2d").resolve())
    assert experts.spec("unet2d").device == "cpu" and experts.route("CT", ["liver"]) == "unet2d"
    assert len(experts.predict("unet2d", grey_slices([(16, 16)]))) == 1
    assert load_expert_config(None).experts == [] and load_expert_config("").routing == []
    for text in ("experts: [{name: a, kind: onnx, path: x}]\n", "routing: [{modality: CT, expert: missing}]\n",
                 "expert: []\n", "experts: [{name: a, kind: yolo, path: x}, {name: a, kind: yolo, path: y}]\n"):
        config.write_text(text)
        with pytest.raises(ExpertConfigError):
            load_expert_config(config)
    with pytest.raises(ExpertConfigError):
        load_expert_config(tmp_path / "absent.yaml")


def test_mask_stack_helpers():
    rng = np.random.default_rng(2)
    probs = rng.random((5, 12, 9)).astype(np.float32) ** 4
    probs[3] = 0.0
    masks = binary_masks(probs)
    assert masks.dtype == bool and np.array_equal(masks, probs > 0.5)
    as_uint8 = masks.astype(np.uint8)
    assert np.array_equal(binary_masks(as_uint8), masks) and np.array_equal(binary_masks(masks), masks)
