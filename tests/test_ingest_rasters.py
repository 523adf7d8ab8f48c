"""Rasters (PNG / JPEG / TIFF): bit depths, colour modes, frames, masks, resizing, slicing policies."""

from __future__ import annotations


import numpy as np
import pytest
import tifffile
from PIL import Image

from medtrinity_assets.ingest import IngestPolicy, load_item
from medtrinity_assets.ingest.intensity import ct_window_for_organs
from medtrinity_assets.ingest.resize import target_size
from medtrinity_assets.ingest.slicing import evenly_spaced
from helpers import file_item
from medtrinity_assets.records import MaskRef, RejectError, SourceItem


def _item(path, fmt, masks=(), modality="X-ray") -> SourceItem:
    return file_item(path, fmt, modality, masks=masks)


def test_16bit_png_scaled_by_percentiles(tmp_path):
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    sl = load_item(_item(path, "png"), IngestPolicy())[0]
    assert sl.pixels.dtype == np.uint8 and sl.pixels.shape == (64, 64)
    assert sl.meta["intensity"]["mode"] == "mr_percentile"
    assert sl.meta["source_dtype"] in ("uint16", "int32")
    assert sl.pixels.min() == 0 and sl.pixels.max() == 255
    assert np.all(np.diff(sl.pixels.reshape(-1).astype(int)) >= 0)  # monotonic mapping
    mm = load_item(_item(path, "png"), IngestPolicy(intensity={"mode": "minmax"}))[0]
    assert mm.pixels[0, 0] == 0 and mm.pixels[-1, -1] == 255 and mm.pixels[32, 0] == 128


def test_rgba_composited_onto_black(tmp_path):
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 1] = 100
    rgba[:, :8, 3] = 255  # opaque left half
    rgba[:, 8:, 3] = 0  # transparent right half
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    sl = load_item(_item(path, "png"), IngestPolicy())[0]
    assert sl.pixels.shape == (16, 16, 3)
    assert tuple(sl.pixels[0, 0]) == (200, 100, 0)
    assert tuple(sl.pixels[0, 15]) == (0, 0, 0)


def test_palette_png_expanded(tmp_path):
    idx = np.zeros((16, 16), dtype=np.uint8)
    idx[:, 8:] = 1
    img = Image.fromarray(idx, "P")
    img.putpalette([10, 20, 30, 250, 0, 0] + [0] * 762)
    path = tmp_path / "pal.png"
    img.save(path)
    sl = load_item(_item(path, "png"), IngestPolicy())[0]
    assert tuple(sl.pixels[0, 0]) == (10, 20, 30) and tuple(sl.pixels[0, 15]) == (250, 0, 0)
    grey = load_item(_item(path, "png"), IngestPolicy(keep_colour=False))[0]
    assert grey.pixels.ndim == 2


def test_grey_stored_as_rgb_becomes_grey(tmp_path):
    grey = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1))
    path = tmp_path / "g.png"
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(path)
    sl = load_item(_item(path, "png"), IngestPolicy())[0]
    assert sl.pixels.ndim == 2 and np.array_equal(sl.pixels, grey)
    assert sl.meta["colour"] == "grey stored as RGB"
    assert sl.meta["orientation"] == "as acquired (2D source)"
    assert sl.slice_axis is None and sl.slice_index is None


def test_multipage_tiff_frames_and_instance_masks(tmp_path):
    frames = np.zeros((5, 24, 24), dtype=np.uint16)
    masks = np.zeros((5, 24, 24), dtype=np.uint16)
    for k in range(5):
        frames[k] = 1000 * (k + 1)
    masks[3, 2:6, 2:6] = 1
    masks[3, 10:14, 10:14] = 2
    img, msk = tmp_path / "stack.tif", tmp_path / "stack_mask.tif"
    tifffile.imwrite(img, frames)
    tifffile.imwrite(msk, masks)
    item = _item(img, "tiff", masks=[MaskRef(str(msk), "instance", label="nucleus")], modality="Microscopy")
    roi = load_item(item, IngestPolicy())
    assert [s.slice_index for s in roi] == [3] and roi[0].slice_axis == "frame"
    assert sorted((layer.label, layer.instance) for layer in roi[0].masks) == [("nucleus", 1), ("nucleus", 2)]
    assert roi[0].meta["frame_index"] == 3
    every = load_item(item, IngestPolicy(slicing={"select": "all"}))
    assert [s.slice_index for s in every] == [0, 1, 2, 3, 4]
    assert [len(s.masks) for s in every] == [0, 0, 0, 2, 0]


def test_resize_keeps_aspect_and_never_upscales(tmp_path):
    big = np.zeros((300, 1200), dtype=np.uint8)
    big[:, 600:] = 255
    path = tmp_path / "wide.png"
    Image.fromarray(big).save(path)
    mask = np.zeros_like(big)
    mask[100:200, 0:300] = 255
    mpath = tmp_path / "wide_mask.png"
    Image.fromarray(mask).save(mpath)
    item = _item(path, "png", masks=[MaskRef(str(mpath), "binary", label="box")])
    sl = load_item(item, IngestPolicy(output={"max_side": 600}))[0]
    assert sl.pixels.shape == (150, 600)
    assert sl.meta["resized_from"] == [300, 1200]
    layer = sl.masks[0]
    assert layer.mask.shape == (150, 600) and layer.mask.dtype == bool
    rows, cols = np.nonzero(layer.mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (50, 99, 0, 149)
    small = np.full((40, 20), 77, dtype=np.uint8)
    spath = tmp_path / "small.png"
    Image.fromarray(small).save(spath)
    same = load_item(_item(spath, "png"), IngestPolicy(output={"max_side": 1024}))[0]
    assert same.pixels.shape == (40, 20) and "resized_from" not in same.meta
    assert target_size(100, 50, None, 64, True) == (64, 32)
    assert target_size(10, 10, (2.0, 1.0), 64, True) == (20, 10)


def test_jpeg_threshold_mask(tmp_path):
    img = np.full((64, 64), 90, dtype=np.uint8)
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[16:48, 16:48] = 255
    ipath, mpath = tmp_path / "x.jpg", tmp_path / "x_mask.jpg"
    Image.fromarray(img).save(ipath, quality=80)
    Image.fromarray(mask).save(mpath, quality=60)  # lossy: values near the edge are not exactly 0/255
    sl = load_item(_item(ipath, "jpeg", masks=[MaskRef(str(mpath), "threshold", label="lesion")]), IngestPolicy())[0]
    layer = sl.masks[0]
    assert layer.label == "lesion"
    assert abs(int(layer.mask.sum()) - 32 * 32) < 64


def test_slicing_policies_on_a_frame_stack(tmp_path):
    frames = np.zeros((10, 16, 16), dtype=np.uint8)
    for k in range(10):
        frames[k, : k + 1, :] = 200  # foreground fraction grows with k: (k+1)/16
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, frames)
    item = _item(path, "tiff")
    idx = lambda **s: [x.slice_index for x in load_item(item, IngestPolicy(slicing=s))]  # noqa: E731
    assert idx() == [1, 3, 6, 8]  # roi without masks -> even (4 bin centres)
    assert idx(select="even", count=2) == [2, 7]
    assert idx(select="stride", stride=3) == [0, 3, 6, 9]
    assert idx(select="all") == list(range(10))
    assert idx(select="all", min_foreground=0.5) == [7, 8, 9]
    assert idx(select="stride", stride=2, min_foreground=0.25) == [4, 6, 8]
    sl = load_item(item, IngestPolicy(slicing={"select": "all", "min_foreground": 0.5}))[0]
    assert sl.meta["selection"]["rule"] == "all"
    with pytest.raises(RejectError) as exc:
        load_item(item, IngestPolicy(slicing={"min_foreground": 1.0}))
    assert exc.value.reason == "no_slices"


def test_evenly_spaced_and_window_choice():
    assert evenly_spaced(list(range(100)), 4) == [12, 37, 62, 87]
    assert evenly_spaced([5, 6], 4) == [5, 6]
    assert ct_window_for_organs(("Lungs",)) == "lung"
    assert ct_window_for_organs(("liver", "lung")) == "abdomen"
    assert ct_window_for_organs(("vertebrae",)) == "bone"
    assert ct_window_for_organs(("brain",)) == "brain"
    assert ct_window_for_organs(("heart",)) == "mediastinum"
    assert ct_window_for_organs(("thyroid",)) == "soft_tissue"
    assert ct_window_for_organs(()) == "soft_tissue"


def test_policy_rejects_unknown_fields():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="slice_axis"):
        IngestPolicy.model_validate({"slicing": {"slice_axis": "axial"}})
    with pytest.raises(ValidationError, match="max_pix"):
        IngestPolicy.model_validate({"max_pix": 5})
    with pytest.raises(ValidationError):
        IngestPolicy.model_validate({"intensity": {"ct_window": "liver"}})
    with pytest.raises(ValidationError):
        IngestPolicy.model_validate({"intensity": {"percentiles": (99, 1)}})
    p = IngestPolicy.model_validate({"slicing": {"axis": "coronal"}, "intensity": {"ct_window": "lung"}})
    assert IngestPolicy.model_validate_json(p.model_dump_json()) == p
