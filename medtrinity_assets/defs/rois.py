"""roi_masks: ROIs from ground-truth masks or expert models, with overlays for visual prompting."""


import polars as pl
from dagster import AssetCheckResult, AssetExecutionContext, MetadataValue, Output

from medtrinity_assets.defs.context import CATALOG, gpu_pool
from medtrinity_assets.defs.declare import shard_asset
from medtrinity_assets.defs.metadata import preview, throughput, write_rejects
from medtrinity_assets.partitions import split_key
from medtrinity_assets.phi import phi_clear
from medtrinity_assets.rois import box_from_mask, rle_decode
from medtrinity_assets.stages.rois import ground_shard
from medtrinity_assets.stages.triplets import geometry_problems
from medtrinity_resources.experts import ExpertModels
from medtrinity_resources.storage import MedtrinityStorage


def boxes_match_masks(rois: pl.DataFrame) -> list[str]:
    """ROI ids whose stored box differs from the box of their own stored mask."""
    bad = []
    for r in rois.filter(pl.col("roi_index") >= 0).iter_rows(named=True):
        box = box_from_mask(rle_decode(r["rle"]))
        if tuple(box) != (r["bbox_x0"], r["bbox_y0"], r["bbox_x1"], r["bbox_y1"]):
            bad.append(r["roi_id"])
    return bad


@shard_asset(
    {
        "boxes_inside_images": "Every ROI box lies inside its image.",
        "boxes_match_masks": "Every ROI's stored box equals the box of its own stored RLE mask.",
    },
    kinds={"polars", "parquet"},
    pool=gpu_pool(),
    description="One row per ROI (label, origin, box, RLE mask, area, position, relations) or a whole-image row.",
)
def roi_masks(context: AssetExecutionContext, images: pl.DataFrame, storage: MedtrinityStorage, experts: ExpertModels):
    dataset, shard = split_key(context.partition_key)
    settings = {dataset: CATALOG.source(dataset).rois}
    result = ground_shard(images, settings, storage, experts if experts.experts else None)
    rois = result.rois
    real = rois.filter(pl.col("roi_index") >= 0)
    md = {
        "rois": MetadataValue.int(real.height),
        "images_without_roi": MetadataValue.int(rois.height - real.height),
        "by_origin": MetadataValue.json(result.by_origin),
        "rois_dropped_by_cap": MetadataValue.int(result.n_capped),
        "labels": MetadataValue.json(dict(real.group_by("label").len().sort("len", descending=True).head(20).iter_rows()) if real.height else {}),
        **throughput(images.height, result.seconds, "images"),
        **write_rejects(storage, "roi_masks", dataset, shard, result.rejects),
        **preview(storage, next(iter(real.filter(pl.col("image_id").is_in(phi_clear(images)["image_id"].to_list()))["overlay_uri"]), None), "ROI overlay"),
    }
    yield Output(rois, metadata=md)
    sizes = {r["image_id"]: (r["width"], r["height"]) for r in images.iter_rows(named=True)}
    outside = [r["roi_id"] for r in real.iter_rows(named=True) if geometry_problems(r, *sizes[r["image_id"]])]
    yield AssetCheckResult(check_name="boxes_inside_images", passed=not outside, metadata={"outside": MetadataValue.json(outside[:50])})
    mismatched = boxes_match_masks(rois)
    yield AssetCheckResult(check_name="boxes_match_masks", passed=not mismatched, metadata={"mismatched": MetadataValue.json(mismatched[:50])})
