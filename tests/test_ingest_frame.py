"""The world frame recorded for a displayed slice agrees with SimpleITK's physical space.

For every bundled NIfTI volume, each displayed plane's pixel centres are mapped to LPS millimetres
through the recorded `DisplayFrame` (`rois.position.world_point`); SimpleITK, reading the same file
on its own, says which voxel lies there and what it holds. The native values our ingest kept for
that pixel must be the values SimpleITK finds at those points (interpolated where the display was
resized). A flipped axis, a swapped row/column direction or an origin off by a voxel moves the
points onto other tissue and the values stop agreeing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from medtrinity_assets.rois.position import world_point

REPO = Path(__file__).resolve().parents[1]
VOLUMES = [
    "totalsegmentator_example/example_ct_sm.nii.gz",
    "totalsegmentator_example/example_mr_sm.nii.gz",
    "niivue_nifti/chris_PD.nii.gz",  # oblique: 15 degrees of pitch
    "niivue_nifti/chris_MRA.nii.gz",
    "niivue_nifti/MR_Gd.nii.gz",
]


def _slices(rel: str):
    from medtrinity_assets.catalog import list_items, load_catalog
    from medtrinity_assets.ingest import load_item

    catalog = load_catalog(REPO / "data" / "catalog.yaml")
    source_name, file_name = rel.split("/")
    source = next(s for s in catalog.sources if s.name == source_name)
    item = next(i for i in list_items(catalog, source) if Path(i.rel_path).name == file_name)
    return load_item(item, source.ingest)


def _sitk_values_at(image: sitk.Image, points_lps: np.ndarray) -> np.ndarray:
    """Linear interpolation of the volume at LPS points (NaN outside the volume's voxels)."""
    index = np.array([image.TransformPhysicalPointToContinuousIndex(tuple(map(float, p))) for p in points_lps])
    volume = sitk.GetArrayFromImage(image).astype(np.float64)  # (z, y, x)
    values = ndimage.map_coordinates(volume, index[:, ::-1].T, order=1, mode="nearest")
    size = np.array(image.GetSize(), dtype=float)  # (x, y, z)
    outside = ((index < -0.5) | (index > size - 0.5)).any(axis=1)
    values[outside] = np.nan
    return values


@pytest.mark.parametrize("rel", VOLUMES)
def test_recorded_world_frame_points_at_the_voxels_sitk_reads_there(rel):
    image = sitk.ReadImage(str(REPO / "data" / "sources" / rel))
    slices = [s for s in _slices(rel) if s.frame is not None and s.frame.world_origin is not None and s.native is not None]
    assert slices, "the bundled volume must yield planes with a world frame and native values"
    rng = np.random.default_rng(0)
    checked = 0
    for sl in slices[:: max(1, len(slices) // 6)]:
        h, w = sl.native.shape
        rows = rng.integers(2, h - 2, 400)
        cols = rng.integers(2, w - 2, 400)
        points = np.array([world_point(sl.frame, c + 0.5, r + 0.5) for r, c in zip(rows, cols)])
        expected = _sitk_values_at(image, points)
        got = sl.native[rows, cols].astype(np.float64)
        inside = ~np.isnan(expected)
        assert inside.mean() > 0.95, (rel, sl.slice_axis, sl.slice_index)  # the plane lies inside the volume
        scale = float(np.percentile(expected[inside], 99) - np.percentile(expected[inside], 1)) or 1.0
        error = np.abs(got[inside] - expected[inside]) / scale
        # resizing smooths edges a little; a wrong frame puts most points on other tissue
        assert np.median(error) < 0.02, (rel, sl.slice_axis, sl.slice_index, float(np.median(error)))
        assert np.corrcoef(got[inside], expected[inside])[0, 1] > 0.97, (rel, sl.slice_axis, sl.slice_index)
        checked += 1
    assert checked >= min(3, len(slices))


def test_a_mirrored_frame_is_caught():
    """The check above has teeth: the same points with the column direction reversed disagree."""
    rel = VOLUMES[0]
    image = sitk.ReadImage(str(REPO / "data" / "sources" / rel))
    sl = next(s for s in _slices(rel) if s.frame is not None and s.frame.world_origin is not None and s.slice_axis == "axial")
    h, w = sl.native.shape
    rows, cols = np.meshgrid(np.arange(2, h - 2, 4), np.arange(2, w - 2, 4), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    mirrored = [world_point(sl.frame, (w - 1 - c) + 0.5, r + 0.5) for r, c in zip(rows, cols)]
    expected = _sitk_values_at(image, np.array(mirrored))
    got = sl.native[rows, cols].astype(np.float64)
    inside = ~np.isnan(expected)
    assert np.corrcoef(got[inside], expected[inside])[0, 1] < 0.9
