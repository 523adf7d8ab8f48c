"""Shared test helpers (tests/ is on sys.path under pytest's default import mode)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medtrinity_assets.records import MaskRef, SourceItem

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

PHI = {
    "PatientName": "Plantedsurname^Zorbagilda",
    "PatientID": "PHI-ID-4471923",
    "PatientBirthDate": "19230405",
    "StudyDate": "20871231",
    "SeriesDate": "20871230",
    "AcquisitionDate": "20871229",
    "ContentDate": "20871228",
    "StudyTime": "235917.123",
    "InstitutionName": "Plantedville Memorial Hospital",
    "InstitutionAddress": "17 Plantedlane, Qwertytown",
    "ReferringPhysicianName": "Drplanted^Referrix",
    "OperatorsName": "Opplanted^Knobturner",
    "PerformingPhysicianName": "Perfplanted^Doc",
    "AccessionNumber": "ACCPLANT7781",
    "StudyID": "STUDYPLANT93",
    "ImageComments": "Plantedcomment: patient Zorbagilda reports pain",
    "StudyDescription": "Plantedstudy description xyzzy",
    "SeriesDescription": "Plantedseries description",
    "OtherPatientIDs": "OTHERPLANT-00912",
    "PatientAddress": "42 Secretplanted Road",
    "DeviceSerialNumber": "SNPLANT55678",
    "StationName": "STATIONPLANT",
}




def file_item(
    path,
    fmt: str,
    modality: str,
    organs=(),
    masks: tuple[MaskRef, ...] | list[MaskRef] = (),
    root=None,
    dataset: str = "t",
) -> SourceItem:
    """A SourceItem for one file, identified by its base name."""
    path = str(path)
    return SourceItem(
        dataset=dataset,
        item_id=os.path.basename(path),
        image_path=path,
        rel_path=os.path.basename(path),
        format=fmt,
        modality=modality,
        organs=tuple(organs),
        masks=tuple(masks),
        extra={"source_root": str(root)} if root else {},
    )


def make_dicom(
    pixels: np.ndarray,
    *,
    modality: str = "CT",
    photometric: str = "MONOCHROME2",
    position=(0.0, 0.0, 0.0),
    orientation=(1, 0, 0, 0, 1, 0),
    spacing=(0.5, 0.5),
    slope: float | None = 1.0,
    intercept: float | None = -1024.0,
    series_uid: str | None = None,
    phi: dict | None = None,
    **extra,
) -> Dataset:
    """A CT-like single-frame DICOM data set built from scratch."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CT_STORAGE
    ds.SOPClassUID = CT_STORAGE
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyInstanceUID = generate_uid()
    if orientation is not None:  # projection images (CR/DX) have no patient geometry
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in spacing]
    ds.SliceThickness = 1.0
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
    for key, value in (phi or {}).items():
        setattr(ds, key, value)
    for key, value in extra.items():
        setattr(ds, key, value)
    bits = 8 if pixels.dtype == np.uint8 else 16
    ds.set_pixel_data(pixels, photometric_interpretation=photometric, bits_stored=bits)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path
