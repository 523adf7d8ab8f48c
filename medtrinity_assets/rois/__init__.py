"""ROI grounding: mask layers, boxes and polygons -> ROIs; geometry, RLE, typed position and
relations, pixel measurements, overlays."""

from .boxes import rois_from_boxes, rois_from_polygons
from .components import mask_components, rois_from_masks
from .experts import rois_from_label_map
from .geometry import box_from_mask
from .measure import SliceValues, measure_roi, slice_values
from .overlay import ROI_COLOURS, render_overlay, roi_colour
from .position import grid_cell, grid_position, position_phrase
from .record import roi_record
from .relations import roi_neighbourhood, roi_relations
from .rle import rle_decode, rle_encode, rle_from_coco, rle_to_coco

__all__ = [
    "ROI_COLOURS",
    "SliceValues",
    "box_from_mask",
    "grid_cell",
    "grid_position",
    "mask_components",
    "measure_roi",
    "position_phrase",
    "render_overlay",
    "rle_decode",
    "rle_encode",
    "rle_from_coco",
    "rle_to_coco",
    "roi_colour",
    "roi_record",
    "roi_neighbourhood",
    "roi_relations",
    "rois_from_boxes",
    "rois_from_label_map",
    "rois_from_masks",
    "rois_from_polygons",
    "slice_values",
]
