"""Format readers: each turns a file (or DICOM series directory) into a `Stack`."""

from medtrinity_assets.ingest.readers.dicom import read_dicom
from medtrinity_assets.ingest.readers.dicom_seg import read_seg_masks
from medtrinity_assets.ingest.readers.raster import read_raster
from medtrinity_assets.ingest.readers.volume import read_volume

__all__ = ["read_dicom", "read_raster", "read_seg_masks", "read_volume"]
