"""A corpus of bad inputs: each is rejected with its stable reason, and good files in the same batch come through."""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image

from medtrinity_assets.ingest import IngestPolicy, check_within_root, detect_format, load_item, load_items
from medtrinity_assets.records import MaskRef, RejectError, SourceItem

SOURCES = Path(__file__).resolve().parents[1] / "data" / "sources"
CT_SMALL = SOURCES / "pydicom_dicom" / "CT_small.dcm"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


class Corpus:
    """Builds files under root/ and the SourceItems pointing at them."""

    def __init__(self, base: Path):
        self.root = base / "root"
        self.root.mkdir()
        self.outside = base / "outside"
        self.outside.mkdir()
        self.items: list[tuple[SourceItem, str | None]] = []  # (item, expected reason or None = good)

    def path(self, name: str) -> Path:
        return self.root / name

    def add(self, name: str, expected: str | None, fmt: str, masks=(), modality="CT", path: Path | None = None):
        p = path if path is not None else self.path(name)
        item = SourceItem(
            dataset="corpus",
            item_id=name,
            image_path=str(p),
            rel_path=name,
            format=fmt,
            modality=modality,
            masks=tuple(masks),
            extra={"source_root": str(self.root)},
        )
        self.items.append((item, expected))

    def add_masked(self, name: str, expected: str | None, mask: str, kind: str, volume: bool = False, **ref):
        """An item whose image is good.png (good.nii.gz, MRI, when `volume`) and whose one mask is root/`mask`
        (`ref`: the MaskRef's label or label_table)."""
        good, fmt, modality = ("good.nii.gz", "nifti", "MRI") if volume else ("good.png", "png", "CT")
        self.add(name, expected, fmt, modality=modality, masks=[MaskRef(str(self.path(mask)), kind, **ref)], path=self.path(good))


def png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path, format="PNG")  # explicit: the name may lie on purpose
    return path


def nifti(path: Path, array: np.ndarray) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path


@pytest.fixture()
def corpus(tmp_path) -> Corpus:
    c = Corpus(tmp_path)
    rng = np.random.default_rng(7)
    grey = (rng.random((64, 64)) * 255).astype(np.uint8)
    vol = rng.normal(size=(6, 32, 32)).astype(np.float32)

    # ---- good files (must come through)
    png(c.path("good.png"), grey)
    c.add("good.png", None, "png")
    nifti(c.path("good.nii.gz"), vol)
    c.add("good.nii.gz", None, "nifti", modality="MRI")
    shutil.copy(CT_SMALL, c.path("good.dcm"))
    c.add("good.dcm", None, "dicom")
    png(c.path("good_mask.png"), (grey > 128).astype(np.uint8) * 255)
    c.add_masked("good_with_mask.png", None, "good_mask.png", "binary", label="x")

    # ---- bad files
    c.path("zero.png").write_bytes(b"")
    c.add("zero.png", "zero_byte_file", "png")

    full = c.path("good.png").read_bytes()
    c.path("truncated.png").write_bytes(full[: len(full) // 2])
    c.add("truncated.png", "corrupt_file", "png")

    jpeg = c.path("full.jpg")
    Image.fromarray(grey).save(jpeg, quality=90)
    c.path("truncated.jpg").write_bytes(jpeg.read_bytes()[:300])
    c.add("truncated.jpg", "corrupt_file", "jpeg")

    dcm = CT_SMALL.read_bytes()
    c.path("truncated.dcm").write_bytes(dcm[: int(len(dcm) * 0.6)])
    c.add("truncated.dcm", "corrupt_file", "dicom")

    c.path("random.dcm").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    c.add("random.dcm", "corrupt_file", "dicom")

    png(c.path("really_png.jpg"), grey)
    c.add("really_png.jpg", "wrong_extension", "jpeg")

    png(c.path("declared_nifti.png"), grey)
    c.add("declared_nifti.png", "wrong_extension", "nifti")

    Image.fromarray(grey).save(c.path("gif_as.png"), format="GIF")
    c.add("gif_as.png", "wrong_extension", "png")

    c.path("text.nii.gz").write_text("this is not a volume\n" * 20)
    c.add("text.nii.gz", "corrupt_file", "nifti")

    nifti(c.path("nan.nii.gz"), np.where(vol > 1.5, np.nan, vol).astype(np.float32))
    c.add("nan.nii.gz", "non_finite_values", "nifti")

    nifti(c.path("inf.nii.gz"), np.where(vol > 1.5, np.inf, vol).astype(np.float32))
    c.add("inf.nii.gz", "non_finite_values", "nifti")

    png(c.path("mask_32.png"), np.zeros((32, 32), np.uint8))
    c.add_masked("shape_mismatch.png", "shape_mismatch", "mask_32.png", "binary", label="x")

    Image.fromarray(np.zeros((48, 64), np.uint8)).save(c.path("mask_wrong.jpg"))
    c.add_masked("jpeg_mask_wrong_size.png", "shape_mismatch", "mask_wrong.jpg", "threshold", label="lungs")

    nifti(c.path("seg_wrong.nii.gz"), np.zeros((6, 32, 16), np.uint8))
    c.add_masked("volume_mask_wrong_shape.nii.gz", "shape_mismatch", "seg_wrong.nii.gz", "multilabel", volume=True, label_table={1: "a"})

    c.path("bomb.png").write_bytes(_bomb_png(20000, 20000))  # 400 Mpx declared, a few bytes of data
    c.add("bomb.png", "decompression_bomb", "png")

    c.add("escape_dotdot.png", "path_escapes_root", "png", path=c.root / ".." / "outside" / "secret.png")
    png(c.outside / "secret.png", grey)

    os.symlink(c.outside / "secret.png", c.path("link.png"))
    c.add("link.png", "path_escapes_root", "png")

    os.symlink(c.outside / "secret.png", c.path("mask_link.png"))
    c.add_masked("mask_symlink.png", "path_escapes_root", "mask_link.png", "binary", label="x")

    c.path("empty.tif").write_bytes(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + struct.pack("<I", 0))
    c.add("empty.tif", "no_pixel_data", "tiff")

    png(c.path("one_pixel.png"), np.zeros((1, 1), np.uint8))
    c.add("one_pixel.png", "image_too_small", "png")

    ds = pydicom.dcmread(CT_SMALL)
    del ds.PixelData
    ds.save_as(c.path("no_pixels.dcm"))
    c.add("no_pixels.dcm", "no_pixel_data", "dicom")

    shutil.copy(SOURCES / "pydicom_dicom" / "liver.dcm", c.path("seg.dcm"))
    c.add("seg.dcm", "not_an_image", "dicom")

    Image.fromarray(grey).save(c.path("image.bmp"))
    c.add("image.bmp", "unsupported_format", "auto")

    good_gz = c.path("good.nii.gz").read_bytes()
    c.path("cut.nii.gz").write_bytes(good_gz[: len(good_gz) * 2 // 3])
    c.add("cut.nii.gz", "corrupt_file", "nifti")

    c.add_masked("mask_missing.png", "mask_missing", "nowhere.png", "binary", label="x")

    c.add("missing.png", "missing_file", "png")

    img4d = sitk.JoinSeries([sitk.GetImageFromArray(vol)] * 3)
    sitk.WriteImage(img4d, str(c.path("four_d.nii.gz")))
    c.add("four_d.nii.gz", "unsupported_dimensions", "nifti")

    nifti(c.path("float_labels.nii.gz"), (vol * 0.5).astype(np.float32))
    c.add_masked("multilabel_float_mask.nii.gz", "unsupported_mask", "float_labels.nii.gz", "multilabel", volume=True, label_table={1: "a"})

    (c.root / "escape.raw").write_bytes(b"\x00" * 64)
    (c.outside / "data.raw").write_bytes(b"\x00" * 64)
    c.path("escape.mhd").write_text(
        "ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\nElementDataFile = ../outside/data.raw\n"
    )
    c.add("escape.mhd", "path_escapes_root", "mha")

    with gzip.open(c.path("gz_dicom.nii.gz"), "wb") as fh:
        fh.write(dcm)
    c.add("gz_dicom.nii.gz", "corrupt_file", "nifti")

    shutil.copy(pydicom.data.get_testdata_file("JPEG-lossy.dcm"), c.path("undecodable.dcm"))
    c.add("undecodable.dcm", "decode_failed", "dicom")

    black = c.path("black.png")
    png(black, np.zeros((32, 32), np.uint8))
    c.add("all_background.png", "no_slices", "png", path=black)
    return c


def test_bad_input_corpus(corpus: Corpus):
    bad = [(item, reason) for item, reason in corpus.items if reason is not None]
    assert len(bad) >= 20
    policy = IngestPolicy()
    for item, expected in corpus.items:
        p = policy if item.item_id != "all_background.png" else IngestPolicy(slicing={"min_foreground": 0.1})
        if expected is None:
            assert load_item(item, p), item.item_id
            continue
        with pytest.raises(RejectError) as exc:
            load_item(item, p)
        assert exc.value.reason == expected, (item.item_id, exc.value.reason, exc.value.detail)
        assert exc.value.detail, item.item_id  # always a human explanation


def test_load_items_never_raises_and_keeps_good_files(corpus: Corpus):
    items = [item for item, _ in corpus.items if item.item_id != "all_background.png"]
    slices, rejects = load_items(items, IngestPolicy())
    good = {item.item_id for item, reason in corpus.items if reason is None}
    assert {key[1] for key in slices} == good
    assert all(slices[("corpus", name)] for name in good)
    expected = {
        item.item_id: reason for item, reason in corpus.items if reason and item.item_id != "all_background.png"
    }
    assert {r["item_id"]: r["reason"] for r in rejects} == expected
    assert all(set(r) == {"dataset", "item_id", "source_file", "reason", "detail"} for r in rejects)


def test_check_within_root(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.png").write_bytes(b"x")
    assert check_within_root(str(root / "sub" / "a.png"), str(root)) == os.path.realpath(root / "sub" / "a.png")
    assert check_within_root(str(root), str(root)) == os.path.realpath(root)
    sibling = tmp_path / "root2"
    sibling.mkdir()
    for bad in (root / ".." / "root2", sibling / "x.png", Path("/etc/passwd")):
        with pytest.raises(RejectError) as exc:
            check_within_root(str(bad), str(root))
        assert exc.value.reason == "path_escapes_root"
    os.symlink(root / "sub", tmp_path / "link_to_inside")
    assert check_within_root(str(tmp_path / "link_to_inside" / "a.png"), None)  # no root: resolution only


def test_detect_format_by_content(tmp_path):
    samples = {
        "dicom": SOURCES / "pydicom_dicom" / "CT_small.dcm",  # its preamble holds a TIFF header: DICM wins
        "nifti": SOURCES / "totalsegmentator_example" / "example_seg.nii.gz",
        "png": SOURCES / "sam_med2d_demo" / "images" / "amos_0004_75.png",
        "jpeg": SOURCES / "stardist_dsb2018" / "histo.jpg",
        "tiff": SOURCES / "stardist_dsb2018" / "img2d.tif",
    }
    for fmt, path in samples.items():
        assert detect_format(str(path)) == fmt, path
    (tmp_path / "e").write_bytes(b"")
    assert detect_format(str(tmp_path / "e")) == "empty"
    (tmp_path / "t").write_text("hello")
    assert detect_format(str(tmp_path / "t")) == "unknown"
    assert detect_format(str(tmp_path)) == "dicom"  # a directory is a series


def test_every_reason_code_in_the_code_is_documented():
    import ast

    from medtrinity_assets.ingest import REJECT_REASONS

    package = Path(__file__).resolve().parents[1] / "medtrinity_assets" / "ingest"
    used: set[str] = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "RejectError" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    used.add(first.value)
                elif isinstance(first, ast.IfExp):  # reason = "a" if ... else "b"
                    used.update(c.value for c in (first.body, first.orelse) if isinstance(c, ast.Constant))
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "reason" for t in node.targets):
                value = node.value
                if isinstance(value, ast.IfExp):
                    used.update(c.value for c in (value.body, value.orelse) if isinstance(c, ast.Constant))
    assert len(used) >= 20
    assert used <= set(REJECT_REASONS), used - set(REJECT_REASONS)
    assert {"unexpected_error", "mask_missing", "missing_file"} <= set(REJECT_REASONS)
