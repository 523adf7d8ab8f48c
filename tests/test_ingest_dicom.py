"""DICOM ingestion: de-identification, photometric handling, series geometry, enhanced multi-frame, SEG masks."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from medtrinity_assets.ingest import IngestPolicy, encode_png, load_item, load_items
from medtrinity_assets.ingest.deid import DEFAULT_PATIENT_SALT, safe_error_text, standard_uid_name
from helpers import PHI, file_item, make_dicom, new_dataset, save
from medtrinity_assets.records import MaskRef, RejectError, SourceItem

SOURCES = Path(__file__).resolve().parents[1] / "data" / "sources"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"

def _item(path, fmt="dicom", modality="auto", organs=(), masks=(), root=None, dataset="t") -> SourceItem:
    return file_item(path, fmt, modality, organs=organs, masks=masks, root=root, dataset=dataset)


def _scan_for_phi(slices, extra_blobs=()) -> list[str]:
    blobs = []
    for sl in slices:
        blobs.append(json.dumps(sl.meta, sort_keys=True).encode())
        blobs.append(encode_png(sl.pixels))
        blobs.append(repr(sl).encode())
        blobs.extend(layer.label.encode() for layer in sl.masks)
    blobs.extend(extra_blobs)
    found = []
    for value in PHI.values():
        for token in {value, value.split("^")[0], value.replace("^", " ")}:
            needle = token.encode()
            if len(needle) >= 6 and any(needle.lower() in b.lower() for b in blobs):
                found.append(token)
    return found


# --------------------------------------------------------------------------- de-identification


def test_planted_phi_never_leaves_ingestion(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDTRINITY_PATIENT_SALT", raising=False)
    hu = np.full((32, 40), -1000, dtype=np.int16)
    hu[8:24, 10:30] = 40
    path = save(
        make_dicom((hu + 1024).astype(np.uint16), phi=PHI, BodyPartExamined="CHEST", BurnedInAnnotation="YES"),
        tmp_path / "phi.dcm",
    )
    raw = path.read_bytes()
    assert PHI["PatientID"].encode() in raw and PHI["InstitutionName"].encode() in raw  # really planted

    slices = load_item(_item(path), IngestPolicy())
    assert slices
    assert _scan_for_phi(slices) == []
    meta = slices[0].meta
    expected = hashlib.sha256(f"{DEFAULT_PATIENT_SALT}\x1f{PHI['PatientID']}".encode()).hexdigest()
    assert meta["patient_hash"] == expected
    assert meta["patient_hash_salt"] == "default"
    assert meta["burned_in_annotation"] is True
    assert meta["body_part"] == "CHEST"
    assert meta["modality_header"] == "CT"
    # no date-like or time-like value of any kind in meta
    text = json.dumps(meta)
    for value in ("1923", "2087", "235917"):
        assert value not in text

    again = load_item(_item(path), IngestPolicy())
    assert again[0].meta["patient_hash"] == expected  # stable
    monkeypatch.setenv("MEDTRINITY_PATIENT_SALT", "a-private-salt")
    salted = load_item(_item(path), IngestPolicy())[0].meta
    assert salted["patient_hash"] not in ("", expected) and salted["patient_hash_salt"] == "env"


def test_planted_phi_in_a_series_and_rejects(tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    uid = generate_uid()
    for k in range(3):
        px = np.full((16, 16), 1024 + 10 * k, dtype=np.uint16)
        save(make_dicom(px, position=(0, 0, 2.0 * k), series_uid=uid, phi=PHI), series / f"im{k}.dcm")
    bad = save(make_dicom(np.zeros((2, 2), np.uint16), phi=PHI), tmp_path / "tiny.dcm")
    slices, rejects = load_items([_item(series), _item(bad)], IngestPolicy())
    produced = [s for group in slices.values() for s in group]
    assert len(produced) == 3
    assert {s.meta["patient_hash"] for s in produced} != {""}
    assert len({s.meta["patient_hash"] for s in produced}) == 1
    assert [r["reason"] for r in rejects] == ["image_too_small"]
    assert _scan_for_phi(produced, [json.dumps(rejects).encode()]) == []


def test_error_details_and_uids_never_echo_header_values():
    exc = ValueError("Unable to convert '19230405' for 'Plantedsurname^Zorbagilda' at 20871231235917\nmore")
    text = safe_error_text(exc)
    assert text == "ValueError: … to convert … for … at …"  # lower-case words only: no value survives
    for leaked in ("19230405", "Plantedsurname", "20871231235917", "more"):
        assert leaked not in text
    unquoted = safe_error_text(ValueError("invalid literal for int() with base 10: JOHN DOE smith-Jones 3^4"))
    assert unquoted == "ValueError: invalid literal for int() with base …"
    assert safe_error_text(OSError(36, "File name too long", "/x/" + "a" * 300)).startswith("OSError[ENAMETOOLONG]: …")
    assert standard_uid_name(pydicom.uid.UID("1.2.840.10008.5.1.4.1.1.2")) == "CT Image Storage"
    assert standard_uid_name(pydicom.uid.UID("1.2.826.0.1.3680043.9.7777.1.2")) == "private"


def test_patient_hash_empty_without_patient_id(tmp_path):
    path = save(make_dicom(np.full((16, 16), 1000, np.uint16)), tmp_path / "anon.dcm")
    meta = load_item(_item(path), IngestPolicy())[0].meta
    assert meta["patient_hash"] == ""
    for key in (
        "orientation",
        "intensity",
        "original_shape",
        "spacing",
        "modality_header",
        "transfer_syntax",
        "photometric",
        "source_dtype",
        "body_part",
        "burned_in_annotation",
    ):
        assert key in meta, key
    assert meta["transfer_syntax"] == "Explicit VR Little Endian"
    assert meta["photometric"] == "MONOCHROME2"
    assert meta["original_shape"] == [16, 16]
    assert meta["spacing"] == [1.0, 0.5, 0.5]  # (z, y, x) of a single-slice volume: slice thickness, rows, cols


# --------------------------------------------------------------------------- photometric / intensity


def test_monochrome1_is_inverted(tmp_path):
    px = np.zeros((16, 16), dtype=np.uint16)
    px[:, 8:] = 1000  # high stored values are DARK in MONOCHROME1
    mono1 = save(
        make_dicom(px, modality="CR", photometric="MONOCHROME1", slope=None, orientation=None), tmp_path / "m1.dcm"
    )
    mono2 = save(
        make_dicom(px, modality="CR", photometric="MONOCHROME2", slope=None, orientation=None), tmp_path / "m2.dcm"
    )
    a = load_item(_item(mono1), IngestPolicy())[0]
    b = load_item(_item(mono2), IngestPolicy())[0]
    assert a.pixels[0, 0] == 255 and a.pixels[0, 15] == 0
    assert b.pixels[0, 0] == 0 and b.pixels[0, 15] == 255
    assert a.meta["intensity"]["inverted"] == "MONOCHROME1"
    assert a.meta["orientation"] == "as acquired (2D source)"


def test_ct_rescale_to_hu_then_window(tmp_path):
    hu = np.array([[-1000, -160, 40, 240, 1000]] * 8, dtype=np.int16)
    stored = (hu + 1024).astype(np.uint16)
    path = save(make_dicom(np.repeat(stored, 2, axis=1)), tmp_path / "ct.dcm")
    sl = load_item(_item(path, organs=("kidney",)), IngestPolicy(output={"min_side": 4}))[0]
    intensity = sl.meta["intensity"]
    assert intensity["mode"] == "ct_window" and intensity["window"]["name"] == "abdomen"
    center, width = 50.0, 400.0
    expected = [
        int(np.clip((h - (center - width / 2)) / width * 255 + 0.5, 0, 255)) for h in (-1000, -160, 40, 240, 1000)
    ]
    assert list(sl.pixels[0, ::2]) == expected
    assert sl.meta["rescale"] == {"slope": 1.0, "intercept": -1024.0, "type": ""}


def test_mr_header_window_and_voi_lut(tmp_path):
    px = np.arange(256, dtype=np.uint16).reshape(16, 16) * 10
    path = save(make_dicom(px, modality="MR", slope=None, WindowCenter=1280, WindowWidth=1280), tmp_path / "mr.dcm")
    sl = load_item(_item(path), IngestPolicy())[0]
    assert sl.meta["intensity"]["mode"] == "header_window"
    assert sl.pixels[0, 0] == 0 and sl.pixels[-1, -1] == 255
    assert sl.pixels[8, 0] == 128  # 1280 -> centre

    ds = make_dicom(px, modality="MR", slope=None)
    lut = Dataset()
    lut.LUTDescriptor = [4096, 0, 8]
    lut.LUTData = np.array([min(255, v // 10) for v in range(4096)], dtype="<u2").tobytes()
    ds.VOILUTSequence = Sequence([lut])
    path2 = save(ds, tmp_path / "mr_lut.dcm")
    sl2 = load_item(_item(path2), IngestPolicy())[0]
    assert sl2.meta["intensity"]["mode"] == "voi_lut"
    assert sl2.pixels.reshape(-1)[100] == 100  # stored 1000 -> LUT 100


def test_palette_and_ybr_become_rgb():
    from pydicom.data import get_testdata_file

    palette = load_item(_item(get_testdata_file("examples_palette.dcm")), IngestPolicy())[0]
    assert palette.pixels.ndim == 3 and palette.pixels.dtype == np.uint8
    assert palette.meta["photometric"] == "PALETTE COLOR"
    ybr = load_item(_item(get_testdata_file("SC_rgb_dcmtk_+eb+cy+n1.dcm")), IngestPolicy())[0]
    rgb = load_item(_item(get_testdata_file("SC_rgb_dcmtk_+eb+cr.dcm")), IngestPolicy())[0]
    assert ybr.meta["colour"].startswith("YBR_FULL")
    # the same picture stored as YBR (lossy) and RGB: close after conversion (raw YBR would differ wildly)
    assert np.abs(ybr.pixels.astype(int) - rgb.pixels.astype(int)).mean() < 8
    grey = load_item(_item(get_testdata_file("SC_rgb_dcmtk_+eb+cr.dcm")), IngestPolicy(keep_colour=False))[0]
    assert grey.pixels.ndim == 2


# --------------------------------------------------------------------------- geometry


def test_series_sorted_by_position_not_file_name(tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    uid = generate_uid()
    # file names deliberately in the opposite order of the positions; values encode the z position
    for k, z in enumerate([40.0, 30.0, 20.0, 10.0, 0.0]):
        px = np.full((12, 12), int(z) + 1024, dtype=np.uint16)
        save(make_dicom(px, position=(0, 0, z), series_uid=uid, InstanceNumber=k + 1), series / f"{k:03d}.dcm")
    policy = IngestPolicy(slicing={"select": "all"}, intensity={"mode": "minmax"})
    slices = load_item(_item(series), policy)
    assert [s.slice_index for s in slices] == [0, 1, 2, 3, 4]
    means = [float(s.pixels.mean()) for s in slices]
    assert means == sorted(means) and means[0] < means[-1]  # inferior -> superior
    assert slices[0].meta["series_n_files"] == 5
    assert slices[0].meta["spacing"] == [10.0, 0.5, 0.5]


def test_series_with_two_series_is_rejected(tmp_path):
    series = tmp_path / "mixed"
    series.mkdir()
    for k in range(2):
        save(make_dicom(np.full((12, 12), 1000, np.uint16), position=(0, 0, k)), series / f"{k}.dcm")
    with pytest.raises(RejectError) as exc:
        load_item(_item(series), IngestPolicy())
    assert exc.value.reason == "multiple_series"


def test_flipped_orientation_is_canonicalised(tmp_path):
    # row direction points to patient RIGHT (-x): a marker in stored column 0 lies on patient left
    px = np.full((16, 16), 1024, dtype=np.uint16)
    px[:, :3] = 3000
    path = save(make_dicom(px, orientation=(-1, 0, 0, 0, 1, 0)), tmp_path / "flipped.dcm")
    sl = load_item(_item(path), IngestPolicy(intensity={"mode": "minmax"}))[0]
    assert sl.slice_axis == "axial"
    assert sl.meta["orientation"].startswith("radiological axial")
    assert sl.pixels[:, -3:].min() == 255 and sl.pixels[:, :-3].max() == 0
    assert sl.meta["reoriented"] is True


def test_enhanced_ct_per_frame_geometry():
    path = SOURCES / "pydicom_dicom" / "eCT_Supplemental.dcm"
    slices = load_item(_item(path), IngestPolicy(slicing={"select": "all"}))
    ds = pydicom.dcmread(path)
    assert len(slices) == ds.NumberOfFrames == 2
    assert all(s.slice_axis == "axial" for s in slices)
    # IOP row cosine is -x: canonicalisation mirrors columns
    assert slices[0].meta["reoriented"] is True
    # the rescale type is 'US' (perfusion values, not HU): the header window is used, not a CT window
    assert slices[0].meta["intensity"]["mode"] == "header_window"
    raw = ds.pixel_array[0].astype(float) - 1024.0
    c, w = 49.0, 102.0
    expected = np.clip((raw - (c - w / 2)) / w * 255 + 0.5, 0, 255).astype(np.uint8)[:, ::-1]
    assert np.array_equal(slices[0].pixels, expected)


def test_radiograph_patient_orientation(tmp_path):
    px = np.zeros((16, 16), dtype=np.uint16)
    px[:, :4] = 1000  # stored left columns
    path = save(
        make_dicom(px, modality="DX", slope=None, orientation=None, PatientOrientation=["R", "F"]), tmp_path / "dx.dcm"
    )
    sl = load_item(_item(path), IngestPolicy(intensity={"mode": "minmax"}))[0]
    assert sl.meta["orientation"].startswith("radiographic: patient left on image right")
    assert sl.pixels[:, -4:].min() == 255  # mirrored so patient left is on image right


# --------------------------------------------------------------------------- DICOM-SEG masks


def _make_seg(
    source_slices: list[Dataset], masks: dict[int, np.ndarray], labels: dict[int, str], by: str = "position"
) -> Dataset:
    seg = new_dataset(SEG_STORAGE, "SEG")
    seg.SOPInstanceUID = generate_uid()
    seg.file_meta.MediaStorageSOPInstanceUID = seg.SOPInstanceUID
    seg.SegmentationType = "BINARY"
    segments = []
    for number, name in labels.items():
        item = Dataset()
        item.SegmentNumber = number
        item.SegmentLabel = name
        segments.append(item)
    seg.SegmentSequence = Sequence(segments)
    frames, per_frame = [], []
    for number, volume in masks.items():
        for k, src in enumerate(source_slices):
            frames.append(volume[k].astype(np.uint8))
            fg = Dataset()
            ident = Dataset()
            ident.ReferencedSegmentNumber = number
            fg.SegmentIdentificationSequence = Sequence([ident])
            if by == "position":
                pos = Dataset()
                pos.ImagePositionPatient = list(src.ImagePositionPatient)
                fg.PlanePositionSequence = Sequence([pos])
            else:  # reference the source instance only
                ref = Dataset()
                ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
                derivation = Dataset()
                derivation.SourceImageSequence = Sequence([ref])
                fg.DerivationImageSequence = Sequence([derivation])
            per_frame.append(fg)
    seg.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    arr = np.stack(frames)
    seg.Rows, seg.Columns = arr.shape[1:]
    seg.NumberOfFrames = arr.shape[0]
    seg.SamplesPerPixel = 1
    seg.PhotometricInterpretation = "MONOCHROME2"
    seg.BitsAllocated = 1
    seg.BitsStored = 1
    seg.HighBit = 0
    seg.PixelRepresentation = 0
    seg.PixelData = pydicom.pixels.pack_bits(arr)
    return seg


@pytest.mark.parametrize("by", ["position", "uid"])
def test_dicom_seg_as_mask_of_a_series(tmp_path, by):
    series = tmp_path / "ct"
    series.mkdir()
    uid = generate_uid()
    slices = []
    for k in range(4):
        ds = make_dicom(np.full((16, 16), 1024, np.uint16), position=(0, 0, 5.0 * k), series_uid=uid)
        save(ds, series / f"s{3 - k}.dcm")
        slices.append(ds)
    liver = np.zeros((4, 16, 16), bool)
    liver[1:3, 2:6, 3:9] = True  # slices 1 and 2, stored columns 3..8
    tumour = np.zeros((4, 16, 16), bool)
    tumour[2, 10:12, 10:12] = True
    seg_path = save(_make_seg(slices, {1: liver, 2: tumour}, {1: "Liver", 2: "Tumour"}, by=by), tmp_path / "seg.dcm")

    with pytest.raises(RejectError) as exc:  # alone, a SEG is not an image
        load_item(_item(seg_path), IngestPolicy())
    assert exc.value.reason == "not_an_image" and "SEG" in exc.value.detail

    item = _item(series, masks=[MaskRef(str(seg_path), "multilabel")])
    out = load_item(item, IngestPolicy())  # select=roi: only slices carrying a segment
    assert [s.slice_index for s in out] == [1, 2]
    labels = {s.slice_index: sorted(layer.label for layer in s.masks) for s in out}
    assert labels == {1: ["Liver"], 2: ["Liver", "Tumour"]}
    liver_layer = next(layer for layer in out[0].masks if layer.label == "Liver")
    assert liver_layer.label_id == 1
    assert np.array_equal(np.argwhere(liver_layer.mask).min(axis=0), [2, 3])
    assert int(liver_layer.mask.sum()) == 4 * 6


def test_seg_frames_of_another_image_are_rejected(tmp_path):
    ds = make_dicom(np.full((16, 16), 1024, np.uint16), position=(0, 0, 0))
    img = save(ds, tmp_path / "img.dcm")
    other = make_dicom(np.full((16, 16), 1024, np.uint16), position=(0, 0, 500))
    seg = save(_make_seg([other], {1: np.ones((1, 16, 16), bool)}, {1: "Liver"}), tmp_path / "seg.dcm")
    with pytest.raises(RejectError) as exc:
        load_item(_item(img, masks=[MaskRef(str(seg), "binary", label="liver")]), IngestPolicy())
    assert exc.value.reason == "shape_mismatch"


def test_bundled_seg_sample_is_not_an_image(tmp_path):
    liver = SOURCES / "pydicom_dicom" / "liver.dcm"
    with pytest.raises(RejectError) as exc:
        load_item(_item(liver), IngestPolicy())
    assert exc.value.reason == "not_an_image"
    copy = tmp_path / "seg_copy"
    shutil.copy(liver, copy)  # no extension: the content sniffing still finds DICOM
    with pytest.raises(RejectError) as exc:
        load_item(_item(copy, fmt="auto"), IngestPolicy())
    assert exc.value.reason == "not_an_image"


def test_nifti_mask_on_a_dicom_series_is_aligned_through_geometry(tmp_path):
    import SimpleITK as sitk

    series = tmp_path / "series"
    series.mkdir()
    uid = generate_uid()
    n, rows, cols = 4, 20, 24
    marker = np.zeros((n, rows, cols), bool)  # DICOM stored grid: columns run toward patient RIGHT
    marker[:, 2:6, 1:5] = True  # low column = patient left, low row = anterior
    for k in range(n):
        px = np.where(marker[k], 2024, 1024).astype(np.uint16)
        ds = make_dicom(px, position=(0, 0, 2.0 * k), orientation=(-1, 0, 0, 0, 1, 0), series_uid=uid)
        save(ds, series / f"{k}.dcm")
    # the same structure as a NIfTI label map stored RAS-like: i toward Right, j toward ANTERIOR
    labels = np.zeros((n, rows, cols), np.uint8)
    labels[:, rows - 6 : rows - 2, 1:5] = 1
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing((0.5, 0.5, 2.0))
    image.SetDirection((-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0))
    sitk.WriteImage(image, str(tmp_path / "mask.nii.gz"))

    item = _item(series, masks=[MaskRef(str(tmp_path / "mask.nii.gz"), "binary", label="marker")])
    slices = load_item(item, IngestPolicy(intensity={"mode": "minmax"}, slicing={"select": "all"}))
    assert len(slices) == n
    for sl in slices:
        layer = sl.masks[0]
        assert np.array_equal(layer.mask, sl.pixels == 255)  # mask lies exactly on the marker
        ys, xs = np.nonzero(layer.mask)
        assert xs.min() >= cols - 5 and ys.max() <= 5  # patient left on image right, anterior up
