"""Helpers of the PHI tests: the bundled images as display-ready slices, and DICOM files with
burned-in text and identifying header values (all values invented)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from phi_synthetic import KNOWN_TEXT_IMAGES
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

REPO = Path(__file__).resolve().parents[1]


@lru_cache(maxsize=1)
def bundled_slices() -> tuple[tuple[str, np.ndarray], ...]:
    """Every demo source item through the real ingest (name, display pixels), rejects skipped."""
    from medtrinity_assets.catalog import list_items, load_catalog
    from medtrinity_assets.ingest import load_item
    from medtrinity_assets.records import RejectError

    catalog = load_catalog(REPO / "data" / "catalog.yaml")
    out = []
    for source in catalog.sources:
        for item in list_items(catalog, source):
            try:
                slices = load_item(item, source.ingest)
            except RejectError:
                continue
            for sl in slices:
                out.append((f"{source.name}/{item.item_id}@{sl.slice_index}", sl.pixels))
    return tuple(out)


#: images that really carry burned-in annotations (institution name, time) in the bundled data
REAL_TEXT = tuple(f"{name}@None" for name in KNOWN_TEXT_IMAGES)


def clean_bundled(min_side: int = 0) -> list[tuple[str, np.ndarray]]:
    return [(n, p) for n, p in bundled_slices() if n not in REAL_TEXT and min(p.shape[:2]) >= min_side]


def one_per_source(min_side: int = 150) -> list[tuple[str, np.ndarray]]:
    seen, out = set(), []
    for name, pixels in clean_bundled(min_side):
        source = name.split("/", 1)[0]
        if source not in seen:
            seen.add(source)
            out.append((name, pixels))
    return out


def write_dicom(path: Path, pixels: np.ndarray, *, patient_name: str, patient_id: str, burned_in: str | None,
                modality: str = "OT", institution: str = "", birth_date: str = "") -> Path:
    """A secondary-capture DICOM of 8-bit grey or RGB pixels with the given identity values."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = modality
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    if institution:
        ds.InstitutionName = institution
    if birth_date:
        ds.PatientBirthDate = birth_date
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if pixels.ndim == 3:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path
