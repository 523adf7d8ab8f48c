"""ROI grounding: mask layers, boxes and polygons -> ROIs; geometry, RLE, position, relations, overlays."""

from .boxes import rois_from_boxes, rois_from_polygons
from .components import mask_components, rois_from_masks
from .geometry import box_from_mask
from .overlay import ROI_COLOURS, render_overlay, roi_colour
from .position import (
    POSITION_VOCABULARY,
    anatomical_phrase,
    anatomical_position,
    anatomical_side,
    display_convention,
    parse_position,
    position_phrase,
)
from .record import roi_record
from .relations import roi_relations
from .rle import rle_decode, rle_encode, rle_from_coco, rle_to_coco

__all__ = [
    "POSITION_VOCABULARY",
    "ROI_COLOURS",
    "anatomical_phrase",
    "anatomical_position",
    "anatomical_side",
    "box_from_mask",
    "display_convention",
    "mask_components",
    "parse_position",
    "position_phrase",
    "render_overlay",
    "rle_decode",
    "rle_encode",
    "rle_from_coco",
    "rle_to_coco",
    "roi_colour",
    "roi_record",
    "roi_relations",
    "rois_from_boxes",
    "rois_from_masks",
    "rois_from_polygons",
]
