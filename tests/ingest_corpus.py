"""The bad-input corpus run end to end (catalog -> source manifest -> images stage -> storage).

`build_corpus(base)` writes a source tree of good and bad files and a catalog declaring three
sources over it; `EXPECTED` maps every file (relative path) to the reject reason it must get,
or None when it must come through. File kinds are the keys' comments; catalog faults are in
tests/test_ingest_corpus.py.
"""

from __future__ import annotations

import gzip
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
import tifffile
import yaml
from PIL import Image, PngImagePlugin
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from helpers import PHI, make_dicom, save

SOURCES = Path(__file__).resolve().parents[1] / "data" / "sources"
CT_SMALL = SOURCES / "pydicom_dicom" / "CT_small.dcm"
LONG = "long_" + "n" * 236  # a 245-byte file name with ".png": legal, but output names add to it
#: names planted in places where a header or file metadata can hold free text
PLANTED = ("Plantedsurname", "Zorbagilda", "PHI-ID-4471923", "Plantedville", "Plantedcomment", "Qwertytown")


def _rng() -> np.random.Generator:
    return np.random.default_rng(11)


def _grey(seed: int, shape=(64, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (shape[0] // 8, shape[1] // 8), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


def _png(path: Path, array: np.ndarray, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", **kw)


def _nifti(path: Path, array: np.ndarray, description: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    if description:
        image.SetMetaData("descrip", description)
    sitk.WriteImage(image, str(path))


def _bomb_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _nuclei(n: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """An image and an instance map with `n` small nuclei on a side x side tile."""
    ids = np.zeros((side, side), dtype=np.uint16)
    grid = int(np.ceil(np.sqrt(n)))
    step = side // grid
    k = 0
    for r in range(grid):
        for c in range(grid):
            if k == n:
                break
            k += 1
            ids[r * step + 1 : r * step + min(step, 7), c * step + 1 : c * step + min(step, 7)] = k
    image = np.where(ids > 0, 200, 30).astype(np.uint8)
    return image, ids


def _phi_dicom(path: Path, **extra) -> None:
    hu = np.full((32, 40), -1000, dtype=np.int16)
    hu[8:24, 10:30] = 40
    save(make_dicom((hu + 1024).astype(np.uint16), phi=PHI, **extra), path)


def _voi_lut_dicom(path: Path) -> None:
    ds = make_dicom(np.full((16, 16), 1000, np.uint16), modality="CR", slope=None, orientation=None)
    item = Dataset()
    item.add(DataElement(0x00283002, "LO", "Plantedsurname^Zorbagilda"))  # a name where numbers belong
    item.add(DataElement(0x00283006, "LO", "Zorbagilda"))
    ds.VOILUTSequence = Sequence([item])
    save(ds, path)


def _files(root: Path, outside: Path) -> dict[str, str | None]:
    """Writes every file of the `corpus` source; returns rel path -> expected reason (None = good)."""
    img, masks = root / "img", root / "masks"
    img.mkdir(parents=True)
    masks.mkdir()
    exp: dict[str, str | None] = {}
    _good_files(img, masks, exp)
    _bad_files(img, masks, exp)
    _bad_volumes_links_and_dirs(img, masks, outside, exp)
    return exp


def _good_files(img: Path, masks: Path, exp: dict[str, str | None]) -> None:
    """Good files that used to crash, hang, collide or leak (and one whose output path is taken)."""
    grey = _grey(1)

    def good(rel: str) -> None:
        exp[rel] = None

    _png(img / f"{LONG}.png", grey)
    good(f"img/{LONG}.png")  # long file name
    _nifti(img / f"{LONG[:200]}.nii.gz", _rng().normal(size=(6, 32, 32)).astype(np.float32))
    good(f"img/{LONG[:200]}.nii.gz")
    _png(img / "twin.png", _grey(2))
    good("img/twin.png")  # same stem, two formats
    Image.fromarray(_grey(3)).save(img / "twin.jpg", quality=95)
    good("img/twin.jpg")
    _nifti(img / "x.nii.gz", _rng().normal(size=(50, 32, 32)).astype(np.float32))
    good("img/x.nii.gz")
    _png(img / "x@axial0045.png", _grey(4))
    good("img/x@axial0045.png")  # named like a slice id
    _png(img / "hash#1.png", _grey(5))
    good("img/hash#1.png")  # the ROI id separator in a name
    _png(img / "new\nline.png", _grey(6))
    good("img/new\nline.png")  # a control character in a name
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Plantedsurname Zorbagilda")
    info.add_text("Comment", "PHI-ID-4471923")
    _png(img / "text_chunks.png", _grey(7), pnginfo=info)
    good("img/text_chunks.png")  # PHI in PNG text
    exif = Image.Exif()
    exif[0x013B] = "Plantedsurname Zorbagilda"  # Artist
    Image.fromarray(_grey(8)).save(img / "exif.jpg", exif=exif, comment=b"Plantedville")
    good("img/exif.jpg")
    tifffile.imwrite(img / "described.tif", _grey(9), description="Plantedcomment Zorbagilda")
    good("img/described.tif")
    _nifti(img / "descrip.nii.gz", _rng().normal(size=(4, 24, 24)).astype(np.float32), "Plantedsurname")
    good("img/descrip.nii.gz")
    _phi_dicom(img / "phi.dcm", BodyPartExamined="ZORBAGILDA", ImageType=["ORIGINAL", "PRIMARY", "PLANTEDSURNAME"])
    good("img/phi.dcm")  # names in free-text header fields, in code fields too
    black = np.zeros((64, 64), np.uint8)
    _png(img / "black.png", black)
    good("img/black.png")
    sparse = np.zeros((64, 64), np.uint16)
    sparse[8:13, 8:13] = sparse[40:45, 20:25] = sparse[30:35, 50:55] = 60000  # 16-bit, nearly black: not a near copy of black.png
    Image.fromarray(sparse).save(img / "sparse16.png")
    good("img/sparse16.png")
    tile, ids = _nuclei(4000, 512)
    _png(img / "nuclei.png", tile)
    good("img/nuclei.png")  # 4,000 instances on 512^2
    tifffile.imwrite(masks / "nuclei.tif", ids)
    specks = np.zeros((64, 64), np.uint8)
    specks[10:30, 10:30] = 255
    specks[50, 50] = specks[40, 5] = 255  # two 1-pixel components: dropped, and counted
    _png(img / "specks.png", grey)
    _png(masks / "specks_lesion.png", specks)
    good("img/specks.png")
    _png(img / "partial.png", grey)
    _png(masks / "partial_lesion.png", specks)
    good("img/partial.png")
    _png(masks / "partial_2.png", specks)  # matches the mask pattern, not its label_regex: reported, ignored
    (img / "loop").symlink_to(img, target_is_directory=True)  # a directory symlink loop under **
    _png(img / "blocked.png", _grey(10))
    exp["img/blocked.png"] = "write_failed"  # its output path is taken
    (img / ".hidden.png").write_bytes(b"not listed")  # hidden: not an item
    (img / "notes.txt").write_text("side file: not an item")


def _bad_files(img: Path, masks: Path, exp: dict[str, str | None]) -> None:
    grey = _grey(1)
    os.mkfifo(img / "pipe.png")
    exp["img/pipe.png"] = "special_file"
    _png(img / "fifo_mask.png", grey)
    os.mkfifo(masks / "fifo_mask_lesion.png")
    exp["img/fifo_mask.png"] = "special_file"
    nan_mask = np.zeros((64, 64), np.float32)
    nan_mask[20:25, 20:25] = np.nan
    _png(img / "nan_mask.png", grey)
    tifffile.imwrite(masks / "nan_mask.tif", nan_mask)
    exp["img/nan_mask.png"] = "non_finite_values"  # a float mask with NaN is not a 25-pixel kidney
    inf_mask = np.zeros((64, 64), np.float32)
    inf_mask[5, 5] = np.inf
    _png(img / "inf_mask.png", grey)
    tifffile.imwrite(masks / "inf_mask.tif", inf_mask)
    exp["img/inf_mask.png"] = "non_finite_values"
    _png(img / "small_mask.png", grey)
    _png(masks / "small_mask_lesion.png", np.zeros((32, 32), np.uint8))
    exp["img/small_mask.png"] = "shape_mismatch"
    (img / "zero.png").write_bytes(b"")
    exp["img/zero.png"] = "zero_byte_file"
    full = (img / "twin.png").read_bytes()
    (img / "truncated.png").write_bytes(full[: len(full) // 2])
    exp["img/truncated.png"] = "corrupt_file"
    (img / "truncated.jpg").write_bytes((img / "twin.jpg").read_bytes()[:300])
    exp["img/truncated.jpg"] = "corrupt_file"
    (img / "random.dcm").write_bytes(_rng().integers(0, 256, 4096, dtype=np.uint8).tobytes())
    exp["img/random.dcm"] = "corrupt_file"
    (img / "text.nii.gz").write_text("not a volume\n" * 20)
    exp["img/text.nii.gz"] = "corrupt_file"
    _png(img / "really_png.jpg", grey)
    exp["img/really_png.jpg"] = "wrong_extension"
    Image.fromarray(grey).save(img / "gif_as.png", format="GIF")
    exp["img/gif_as.png"] = "wrong_extension"
    Image.fromarray(grey).save(img / "image.bmp")
    exp["img/image.bmp"] = "unsupported_format"
    (img / "bomb.png").write_bytes(_bomb_png(20000, 20000))
    exp["img/bomb.png"] = "decompression_bomb"
    _png(img / "one_pixel.png", np.zeros((1, 1), np.uint8))
    exp["img/one_pixel.png"] = "image_too_small"
    ds = pydicom.dcmread(CT_SMALL)
    del ds.PixelData
    ds.save_as(img / "no_pixels.dcm")
    exp["img/no_pixels.dcm"] = "no_pixel_data"
    shutil.copy(SOURCES / "pydicom_dicom" / "liver.dcm", img / "seg.dcm")
    exp["img/seg.dcm"] = "not_an_image"
    shutil.copy(pydicom.data.get_testdata_file("JPEG-lossy.dcm"), img / "undecodable.dcm")
    exp["img/undecodable.dcm"] = "decode_failed"
    _voi_lut_dicom(img / "voi_lut.dcm")
    exp["img/voi_lut.dcm"] = "corrupt_file"  # a VOI LUT of text


def _bad_volumes_links_and_dirs(img: Path, masks: Path, outside: Path, exp: dict[str, str | None]) -> None:
    def good(rel: str) -> None:
        exp[rel] = None

    grey = _grey(1)
    vol = _rng().normal(size=(6, 32, 32)).astype(np.float32)
    _nifti(img / "nan.nii.gz", np.where(vol > 1.5, np.nan, vol).astype(np.float32))
    exp["img/nan.nii.gz"] = "non_finite_values"
    sitk.WriteImage(sitk.JoinSeries([sitk.GetImageFromArray(vol)] * 3), str(img / "four_d.nii.gz"))
    exp["img/four_d.nii.gz"] = "unsupported_dimensions"
    good_gz = (img / "x.nii.gz").read_bytes()
    (img / "cut.nii.gz").write_bytes(good_gz[: len(good_gz) * 2 // 3])
    exp["img/cut.nii.gz"] = "corrupt_file"
    with gzip.open(img / "gz_dicom.nii.gz", "wb") as fh:
        fh.write(CT_SMALL.read_bytes())
    exp["img/gz_dicom.nii.gz"] = "corrupt_file"
    (img / "empty.tif").write_bytes(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + struct.pack("<I", 0))
    exp["img/empty.tif"] = "no_pixel_data"
    (outside / "data.raw").write_bytes(b"\x00" * 64)
    (img / "escape.mhd").write_text("ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\nElementDataFile = ../../outside/data.raw\n")
    exp["img/escape.mhd"] = "path_escapes_root"
    os.mkfifo(img / "fifo.raw")
    (img / "fifo_data.mhd").write_text("ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\nElementDataFile = fifo.raw\n")
    exp["img/fifo_data.mhd"] = "special_file"
    exp["img/fifo.raw"] = "special_file"
    _png(outside / "secret.png", grey)
    (img / "escape_link.png").symlink_to(outside / "secret.png")
    exp["img/escape_link.png"] = "path_escapes_root"
    (img / "broken_link.png").symlink_to(img / "nowhere.png")
    exp["img/broken_link.png"] = "missing_file"
    (img / "empty_dir").mkdir()
    exp["img/empty_dir"] = "no_pixel_data"
    two = img / "two_series"
    two.mkdir()
    for k in range(2):
        save(make_dicom(np.full((16, 16), 1000, np.uint16), position=(0, 0, k)), two / f"s{k}.dcm")
    exp["img/two_series"] = "multiple_series"
    good("img/two_series/s0.dcm")
    good("img/two_series/s1.dcm")  # each file alone is one image
    colour_ids = np.zeros((64, 64, 3), np.uint8)
    colour_ids[5:10, 5:10] = (255, 0, 0)
    _png(img / "colour_inst.png", grey)
    _png(masks / "colour_inst.png", colour_ids)
    exp["img/colour_inst.png"] = "unsupported_mask"


def build_corpus(base: Path) -> tuple[Path, dict[str, dict[str, str | None]]]:
    """The corpus tree and catalog; returns (catalog path, {source: {rel path or item id: expected reason}}).

    Keys are relative paths, except for source ``listed`` (explicit items), keyed by item id.
    """
    root, outside = base / "data", base / "outside"
    outside.mkdir(parents=True)
    root.mkdir()
    expected = {"corpus": _files(root, outside)}
    named = root / "named"
    for name, reason in (
        ("ct-liv-001_scan.png", None),
        ("mr-kid-002_scan.png", None),
        ("xx-liv-003_scan.png", "unmapped_name_value"),
        ("ct-lung-004_scan.png", "unmapped_name_value"),
        ("nopattern_scan.png", "name_not_matched"),
    ):
        _png(named / name, _grey(20 + len(name)))
        expected.setdefault("named", {})[f"named/{name}"] = reason
    _png(named / "labels" / "001_seg_Left-Kidney.png", np.pad(np.full((10, 10), 255, np.uint8), ((5, 49), (5, 49))))
    _png(named / "labels" / "002_seg_kidney_RIGHT.png", np.pad(np.full((10, 10), 255, np.uint8), ((40, 14), (40, 14))))
    expected["listed"] = {"img/twin.png": None, "img/twin.png~dup2": "item_id_collision", "img/missing_mask.png": "mask_missing"}
    _png(root / "img" / "missing_mask.png", _grey(30))
    expected["corpus"]["img/missing_mask.png"] = None
    catalog = {
        "shard_count": 3,
        "sources": [
            {
                "name": "corpus",
                "title": "bad input corpus",
                "modality": "auto",
                "root": "data",
                "layout": {
                    "adapter": "files",
                    "images": "img/**/*",
                    "masks": [
                        {"pattern": "masks/{stem}_*.png", "convention": "binary", "label_regex": "^{stem}_(?P<label>[a-z]+)$"},
                        {"pattern": "masks/{stem}.tif", "convention": "instance", "label": "nucleus"},
                        {"pattern": "masks/{stem}.png", "convention": "instance", "label": "cell"},
                    ],
                },
                "licence": "CC0",
                "redistributable": True,
                "rois": {"min_area_px": 4},
            },
            NAMED_SOURCE,
            {
                "name": "listed",
                "title": "explicit items",
                "modality": "X-ray",
                "root": "data",
                "layout": {
                    "adapter": "explicit",
                    "items": [
                        {"image": "img/twin.png"},
                        {"image": "img/./twin.png"},
                        {"image": "img/missing_mask.png", "masks": [{"path": "masks/gone.png", "convention": "binary", "label": "x"}]},
                    ],
                },
                "licence": "CC0",
                "redistributable": True,
            },
        ],
    }
    path = base / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))
    return path, expected


#: a source whose file names carry modality and organ, whose labels need normalising, and whose
#: masks pair with images through a shared part of the name: 19 lines of catalog
NAMED_SOURCE_YAML = r"""
name: named
title: scans named <modality>-<organ>-<case>_scan, masks <case>_seg_<label>
modality: CT
root: data
layout:
  adapter: files
  images: "named/*_scan.png"
  names:
    regex: '^named/(?P<modality>[a-z]+)-(?P<organ>[a-z]+)-(?P<case>\d+)_scan$'
    modality: {ct: CT, mr: MRI}
    organs: {liv: liver, kid: kidney}
  masks:
    - {pattern: "named/labels/{case}_seg_*.png", convention: binary, label_regex: '^{case}_seg_(?P<label>.+)$'}
labels: {separators: "_-", case: lower, side: last}
licence: CC0
redistributable: true
"""
NAMED_SOURCE = yaml.safe_load(NAMED_SOURCE_YAML)
