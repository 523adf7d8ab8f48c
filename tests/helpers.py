"""Shared test helpers (tests/ is on sys.path under pytest's default import mode)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medtrinity_assets.records import MaskRef, SourceItem

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "data" / "sources"
KNOWLEDGE_CORPORA = REPO / "data" / "knowledge" / "corpora.yaml"  # the bundled corpus config
needs_bundled_sources = pytest.mark.skipif(not SOURCES.is_dir(), reason="data/sources absent (bundled with the repository)")


def bundled_catalog():
    """The bundled catalog (data/catalog.yaml)."""
    from medtrinity_assets.catalog import load_catalog

    return load_catalog(REPO / "data" / "catalog.yaml")


def bundled_slices(catalog, source_name: str, item_suffix: str):
    """(slices, source) of the bundled item of `source_name` whose id ends with `item_suffix`, ingested
    through the production path."""
    from medtrinity_assets.catalog import list_source
    from medtrinity_assets.ingest import load_item

    source = catalog.source(source_name)
    item = next(i for i in list_source(catalog, source).items if i.item_id.endswith(item_suffix))
    return load_item(item, source.ingest), source

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
    ds = new_dataset(CT_STORAGE, modality)
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


def new_dataset(sop_class: str, modality: str) -> Dataset:
    """An explicit-VR little-endian data set of one SOP class and modality, file meta filled in."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    return ds


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


# -- in-process materialisation (tests only: `medtrinity demo` launches through a webserver) -------

QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class Outcome:
    def __init__(self, label: str, result) -> None:
        self.label, self.result, self.success = label, result, result.success


def run_job(defs, job: str, instance, partition_key=None, label: str = "", run_config: dict | None = None) -> Outcome:
    """One run of a code-location job, in this process, on `instance`."""
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False, run_config={**QUIET_CONSOLE, **(run_config or {})}
    )
    return Outcome(label or job, result)


def materialize_all(instance, sources=None, knowledge: bool = True, echo: bool = False) -> list[Outcome]:
    """Knowledge corpora and retrieval evaluation, every (source, shard) chain, the reports: one run each."""
    from medtrinity_assets.definitions import defs
    from medtrinity_assets.defs.context import CATALOG, CORPUS_PARTITIONS
    from medtrinity_assets.partitions import dataset_shard_key

    outcomes = []
    if knowledge:
        for corpus in CORPUS_PARTITIONS.get_partition_keys():
            outcomes.append(run_job(defs, "knowledge_index_job", instance, corpus, f"knowledge_index[{corpus}]"))
        outcomes.append(run_job(defs, "retrieval_evaluation_job", instance))
    for name in sources or CATALOG.names:
        for shard in CATALOG.shard_keys:
            outcomes.append(run_job(defs, "dataset_shard_job", instance, dataset_shard_key(name, shard), f"dataset[{name}|{shard}]"))
    outcomes.append(run_job(defs, "reports_job", instance))
    if echo:
        for o in outcomes:
            print(o.label, "ok" if o.success else "FAILED")
    return outcomes


def materialize_release(instance, name: str, benchmark_dirs: dict | None = None) -> Outcome:
    from medtrinity_assets.definitions import defs

    run_config = {"ops": {"dataset_release": {"config": {"benchmark_dirs": dict(benchmark_dirs or {})}}}}
    return run_job(defs, "release_job", instance, name, f"release[{name}]", run_config)
