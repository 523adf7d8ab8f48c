"""Every bundled demo source file, and pydicom's local test files for every transfer syntax it ships."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medtrinity_assets.ingest import IngestPolicy, encode_png, load_item
from medtrinity_assets.ingest.formats import format_from_name
from medtrinity_assets.records import MaskRef, RejectError, SourceItem

SOURCES = Path(__file__).resolve().parents[1] / "data" / "sources"
NOT_IMAGES = {".txt", ".json", ".jsonl", ".md"}
# files of the demo sources that are legitimately not images on their own
EXPECTED_REJECTS = {
    "pydicom_dicom/liver.dcm": "not_an_image",
    # the upstream lung mask is PNG data in a .jpg file: as an image it is refused, as a mask it is
    # read by content (test_stardist_instances_and_xray_threshold_mask)
    "torchxrayvision_cxr/masks/16747_3_1_lungs_v7labs.jpg": "wrong_extension",
}
# masks of the demo sources, used as masks (not as items)
MASK_DIRS = ("sam_med2d_demo/masks", "torchxrayvision_cxr/masks")
MASK_FILES = {
    "stardist_dsb2018/mask2d.tif",
    "totalsegmentator_example/example_seg.nii.gz",
    "totalsegmentator_example/example_seg_mr.nii.gz",
}

pytestmark = pytest.mark.skipif(not SOURCES.is_dir(), reason="data/sources not present")


def _item(rel: str, modality="auto", organs=(), masks=()) -> SourceItem:
    path = SOURCES / rel
    dataset = rel.split("/")[0]
    return SourceItem(
        dataset=dataset,
        item_id=rel,
        image_path=str(path),
        rel_path=rel,
        format=format_from_name(str(path)) or "auto",
        modality=modality,
        organs=tuple(organs),
        masks=tuple(masks),
        extra={"source_root": str(SOURCES / dataset)},
    )


def _all_source_files() -> list[str]:
    out = []
    for path in sorted(SOURCES.rglob("*")):
        rel = path.relative_to(SOURCES).as_posix()
        if path.is_file() and path.suffix not in NOT_IMAGES and path.name != "README.txt":
            out.append(rel)
    return out


def _labels(name: str) -> dict[int, str]:
    data = json.loads((SOURCES / "totalsegmentator_example" / name).read_text())["labels_present"]
    return {int(k): v for k, v in data.items()}


def test_every_demo_file_ingests_or_is_rejected_for_a_known_reason():
    files = _all_source_files()
    assert len(files) >= 60
    policy = IngestPolicy()
    produced = 0
    for rel in files:
        item = _item(rel, modality="CT" if rel.endswith("example_ct_sm.nii.gz") else "auto")
        if rel in EXPECTED_REJECTS:
            with pytest.raises(RejectError) as exc:
                load_item(item, policy)
            assert exc.value.reason == EXPECTED_REJECTS[rel], rel
            continue
        slices = load_item(item, policy)  # masks ingest as images too (greyscale label maps)
        assert slices, rel
        for sl in slices:
            assert sl.pixels.dtype == np.uint8 and sl.pixels.ndim in (2, 3), rel
            assert max(sl.pixels.shape[:2]) <= policy.output.max_side
            json.dumps(sl.meta)
            assert sl.meta["orientation"] and "mode" in sl.meta["intensity"]
            assert encode_png(sl.pixels)[:8] == b"\x89PNG\r\n\x1a\n"
        produced += len(slices)
    assert produced > len(files)


def test_totalsegmentator_multilabel_masks_are_aligned():
    item = _item(
        "totalsegmentator_example/example_ct_sm.nii.gz",
        modality="CT",
        organs=("abdomen",),
        masks=[
            MaskRef(
                str(SOURCES / "totalsegmentator_example" / "example_seg.nii.gz"),
                "multilabel",
                label_table=_labels("example_seg_labels.json"),
            )
        ],
    )
    slices = load_item(item, IngestPolicy(slicing={"count": 6}))
    assert len(slices) == 6
    livers = []
    for sl in slices:
        assert sl.meta["orientation"] == "radiological axial: patient left on image right, anterior up"
        assert sl.meta["intensity"]["window"]["name"] == "abdomen"
        for layer in sl.masks:
            assert layer.mask.shape == sl.pixels.shape and layer.mask.any()
            assert layer.label_id is not None and not layer.label.startswith("label_")
        by_label = {layer.label: layer.mask for layer in sl.masks}
        if "liver" in by_label:
            livers.append((sl, by_label))
    assert livers, "the liver (label 5) must appear on roi slices"
    for sl, by_label in livers:
        liver = by_label["liver"]
        # soft tissue in the abdomen window (50/400): liver ~ 40-80 HU -> grey ~ 110-150
        assert 95 < float(sl.pixels[liver].mean()) < 170
        # patient right (liver) is on the image left; patient left (spleen) on the image right
        assert np.argwhere(liver)[:, 1].mean() < sl.width / 2
        if "spleen" in by_label:
            assert np.argwhere(by_label["spleen"])[:, 1].mean() > sl.width / 2
        if "vertebrae_L1" in by_label:  # spine is posterior: lower half of the image
            assert np.argwhere(by_label["vertebrae_L1"])[:, 0].mean() > sl.height / 2


def test_totalsegmentator_mr_unknown_ids_are_named():
    item = _item(
        "totalsegmentator_example/example_mr_sm.nii.gz",
        modality="MRI",
        masks=[
            MaskRef(str(SOURCES / "totalsegmentator_example" / "example_seg_mr.nii.gz"), "multilabel", label_table={})
        ],
    )
    sl = load_item(item, IngestPolicy(slicing={"count": 1}))[0]
    assert sl.masks and all(layer.label == f"label_{layer.label_id}" for layer in sl.masks)
    assert sl.meta["intensity"]["mode"] == "mr_percentile"


def test_sam_med2d_binary_masks_match_the_manifest():
    rows = [json.loads(line) for line in (SOURCES / "sam_med2d_demo" / "manifest.jsonl").read_text().splitlines()]
    by_image: dict[str, list[dict]] = {}
    for row in rows:
        by_image.setdefault(row["image"], []).append(row)
    for image, entries in by_image.items():
        masks = [
            MaskRef(str(SOURCES / "sam_med2d_demo" / e["mask"]), "binary", label=e["label"], instance=e["instance"])
            for e in entries
        ]
        sl = load_item(_item(f"sam_med2d_demo/{image}", "CT", masks=masks), IngestPolicy())[0]
        assert sl.pixels.ndim == 2  # grey stored as RGB
        got = {(layer.label, layer.instance): layer.mask for layer in sl.masks}
        for e in entries:
            mask = got[(e["label"], e["instance"])]
            ys, xs = np.nonzero(mask)
            assert [xs.min(), ys.min(), xs.max(), ys.max()] == e["bbox_xyxy"], e["mask"]
            assert int(mask.sum()) == e["area_px"]


def test_stardist_instances_and_xray_threshold_mask():
    nuclei = load_item(
        _item(
            "stardist_dsb2018/img2d.tif",
            "Microscopy",
            masks=[MaskRef(str(SOURCES / "stardist_dsb2018" / "mask2d.tif"), "instance", label="nucleus")],
        ),
        IngestPolicy(),
    )[0]
    assert len(nuclei.masks) == 125 and {layer.label for layer in nuclei.masks} == {"nucleus"}
    assert nuclei.meta["source_dtype"] == "uint16" and nuclei.meta["intensity"]["mode"] == "mr_percentile"
    lung = load_item(
        _item(
            "torchxrayvision_cxr/images/16747_3_1.jpg",
            "X-ray",
            masks=[
                MaskRef(
                    str(SOURCES / "torchxrayvision_cxr" / "masks" / "16747_3_1_lungs_v7labs.jpg"),
                    "threshold",
                    label="lungs",
                )
            ],
        ),
        IngestPolicy(output={"max_side": 2048}),
    )[0]
    ys, xs = np.nonzero(lung.masks[0].mask)
    assert [xs.min(), ys.min(), xs.max(), ys.max()] == [86, 10, 989, 758]  # manifest bbox


# --------------------------------------------------------------------------- pydicom's bundled files

# files pydicom ships that are deliberately broken or cannot be decoded without GDCM
DECODER_DEPENDENT = {"JPEG-lossy.dcm", "JPEG2000-embedded-sequence-delimiter.dcm"}  # may decode with newer plugins
PYDICOM_REJECTS = {
    "JPEG-lossy.dcm": "decode_failed",  # 12-bit JPEG Extended stream libjpeg refuses (GDCM only)
    "JPEG2000-embedded-sequence-delimiter.dcm": "decode_failed",
    "MR_truncated.dcm": "corrupt_file",
    "badVR.dcm": "corrupt_file",
    "meta_missing_tsyntax.dcm": "corrupt_file",
    "nested_priv_SQ.dcm": "corrupt_file",
    "no_meta.dcm": "corrupt_file",
    "liver_1frame.dcm": "not_an_image",
    "liver_expb_1frame.dcm": "not_an_image",
    "SC_rgb_small_odd.dcm": "image_too_small",
    "SC_rgb_small_odd_big_endian.dcm": "image_too_small",
    "SC_rgb_small_odd_jpeg.dcm": "image_too_small",
}
MUST_COVER = {
    "Explicit VR Little Endian",
    "Implicit VR Little Endian",
    "Explicit VR Big Endian",
    "Deflated Explicit VR Little Endian",
    "RLE Lossless",
    "JPEG Baseline (Process 1)",
    "JPEG Extended (Process 2 and 4)",
    "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
    "JPEG-LS Lossless Image Compression",
    "JPEG-LS Lossy (Near-Lossless) Image Compression",
    "JPEG 2000 Image Compression (Lossless Only)",
    "JPEG 2000 Image Compression",
}


def test_pydicom_local_files_every_transfer_syntax():
    # the files pydicom installs with itself (get_testdata_files would try to download more)
    files = sorted(str(p) for p in Path(get_testdata_file("CT_small.dcm")).parent.glob("*.dcm"))
    assert len(files) > 50
    covered: set[str] = set()
    policy = IngestPolicy(output={"min_side": 8})
    for path in files:
        name = os.path.basename(path)
        item = SourceItem(
            dataset="pydicom", item_id=name, image_path=path, rel_path=name, format="dicom", modality="auto"
        )
        try:
            slices = load_item(item, policy)
        except RejectError as exc:
            expected = PYDICOM_REJECTS.get(name)
            acceptable = {expected} if expected else {"no_pixel_data", "not_an_image"}
            assert exc.reason in acceptable, (name, exc.reason, exc.detail)
            continue
        assert name not in PYDICOM_REJECTS or name in DECODER_DEPENDENT, name
        assert slices and slices[0].pixels.dtype == np.uint8
        covered.add(slices[0].meta["transfer_syntax"])
    assert MUST_COVER <= covered, MUST_COVER - covered


def test_transfer_syntaxes_decode_to_the_same_picture():
    reference = load_item(
        SourceItem("p", "r", get_testdata_file("MR_small.dcm"), "r", "dicom", "auto"), IngestPolicy()
    )[0]
    for name in (
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
    ):
        other = load_item(SourceItem("p", name, get_testdata_file(name), name, "dicom", "auto"), IngestPolicy())[0]
        assert np.array_equal(other.pixels, reference.pixels), name
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    assert reference.meta["intensity"]["window"] == {"center": float(ds.WindowCenter), "width": float(ds.WindowWidth)}


def test_multiframe_cine_selects_frames():
    path = get_testdata_file("examples_ybr_color.dcm")
    slices = load_item(SourceItem("p", "cine", path, "cine", "dicom", "auto"), IngestPolicy())
    assert [s.slice_index for s in slices] == [3, 11, 18, 26]  # 4 of 30 frames, bin centres
    assert all(s.slice_axis == "frame" and s.pixels.shape == (240, 320, 3) for s in slices)
    assert slices[0].meta["n_frames"] == 30
