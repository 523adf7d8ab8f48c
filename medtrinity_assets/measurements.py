"""The pixel measurements of one ROI (`Measurements`), as `rois/measure.py` produces them and the
caption stages read them. Re-exported by `medtrinity_assets.records` with the other stage records;
the persisted ``m_*`` columns are listed in `medtrinity_assets.schema` and docs/record_schema.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Measurements:
    """Pixel measurements of one ROI on its slice (IBSI / pyradiomics naming where one exists).

    Every value is None when it could not be measured; `unmeasured` then says why
    (field name -> reason, e.g. ``{"ring_mean": "roi_covers_image"}``).

    intensity_unit:  HU (CT, native values before windowing) | relative (MR, X-ray, US, NM,
                     grey microscopy: 0..1 of the slice's native range) | rgb (photographs, H&E)
    mean / ring_mean / std / ring_std:  inside the ROI and in a ring of surrounding tissue,
                     in `intensity_unit` (luminance 0..1 for rgb)
    contrast:        (mean - ring_mean) / pooled std (a standardised difference, unitless)
    hue_delta / saturation_delta:  rgb only: ROI minus ring (hue in degrees, saturation 0..1)
    rgb_mean / ring_rgb_mean:  rgb only: mean colour (R, G, B on 0..1) inside the ROI / in the ring
    entropy:         first-order entropy (bits) of the ROI's intensities
    glcm_contrast / glcm_homogeneity:  grey-level co-occurrence features inside the ROI
    area_px / area_mm2 / equivalent_diameter_px / equivalent_diameter_mm:  size
    circularity:     4 pi area / perimeter^2 (1 = disc)
    elongation:      minor / major axis length (1 = round, near 0 = elongated)
    solidity:        area / convex hull area
    margin_sharpness:  mean gradient magnitude on the border band / mean gradient magnitude inside
                     the ROI and in the ring (> 1: the border is sharper than the texture around it)
    n_components:    connected components of this ROI's mask
    label_count:     ROIs of this label on the image, or the instances one grouped ROI holds;
                     count_kind (when > 1): ``instances`` or ``parts`` of one structure (catalog)
    instance_count:  a grouped ROI (catalog `rois.instances: group`): how many instances of its
                     label its mask unites (None: the ROI is one instance or one mask)
    instance_diameter_{min,median,max}_px / _mm:  equivalent diameters of the grouped instances
                     (mm where pixel spacing is known)
    instance_cells:  cells of the position grid (grid/grid.yaml) holding at least one instance centre
    largest_row / largest_col:  grid cell of the largest grouped instance
    """

    intensity_unit: str | None = None
    mean: float | None = None
    ring_mean: float | None = None
    std: float | None = None
    ring_std: float | None = None
    contrast: float | None = None
    hue_delta: float | None = None
    saturation_delta: float | None = None
    rgb_mean: tuple[float, float, float] | None = None
    ring_rgb_mean: tuple[float, float, float] | None = None
    entropy: float | None = None
    glcm_contrast: float | None = None
    glcm_homogeneity: float | None = None
    area_px: int | None = None
    area_mm2: float | None = None
    equivalent_diameter_px: float | None = None
    equivalent_diameter_mm: float | None = None
    circularity: float | None = None
    elongation: float | None = None
    solidity: float | None = None
    margin_sharpness: float | None = None
    n_components: int | None = None
    label_count: int | None = None
    count_kind: str | None = None
    instance_count: int | None = None
    instance_diameter_min_px: float | None = None
    instance_diameter_median_px: float | None = None
    instance_diameter_max_px: float | None = None
    instance_diameter_min_mm: float | None = None
    instance_diameter_median_mm: float | None = None
    instance_diameter_max_mm: float | None = None
    instance_cells: int | None = None
    largest_row: int | None = None
    largest_col: int | None = None
    unmeasured: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:  # colours read back from parquet / YAML arrive as lists
        for name in ("rgb_mean", "ring_rgb_mean"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
