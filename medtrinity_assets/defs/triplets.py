"""triplets: the image–ROI–description records of one shard, with provenance and quarantine flags."""


import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetExecutionContext, MetadataValue, Output

from medtrinity_assets.captions.checks import modality_problems
from medtrinity_assets.captions.quality import caption_quality
from medtrinity_assets.stages.facts import measurements_from_row
from medtrinity_assets.defs.context import CATALOG
from medtrinity_assets.defs.declare import shard_asset
from medtrinity_assets.records import CaptionFacts
from medtrinity_assets.defs.metadata import preview, table_md
from medtrinity_assets.stages.judge import judge_shard
from medtrinity_assets.stages.triplets import assemble_triplets, quarantine_counts
from medtrinity_resources.judge import CaptionJudgeResource
from medtrinity_resources.storage import MedtrinityStorage


def modality_named(caption: str, modality: str) -> bool:
    """The caption names the record's modality (or a synonym) and no other as the image's own."""
    facts = CaptionFacts(modality=modality, organs=[], coarse_caption="", roi_label=None, roi_position=None, roi_area_frac=None)
    return bool(caption.strip()) and not modality_problems(caption, {}, facts)


@shard_asset(
    {
        "captions_name_modality": "Every non-quarantined triplet has a non-empty caption naming its modality.",
        "caption_quality": (
            "Caption quality figures of the shard (appearance claims, distinct-2, sentence repetition); "
            "warns when an appearance claim disagrees with the measurements, a wording artefact or ontology fragment "
            "appears, or a caption names a disease not recorded for its image."
        ),
        "caption_problems": "Quarantined records per problem code; every caption is kept (none dropped) and every quarantined record has its reasons.",
    },
    kinds={"polars", "parquet"},
    description="One row per image–ROI–description with provenance; records failing checks are quarantined, never dropped.",
)
def triplets(
    context: AssetExecutionContext,
    images: pl.DataFrame,
    roi_masks: pl.DataFrame,
    coarse_captions: pl.DataFrame,
    caption_batches: pl.DataFrame,
    storage: MedtrinityStorage,
    caption_judge: CaptionJudgeResource,
):
    licences = {s.name: (s.licence, s.redistributable) for s in CATALOG.sources}
    judgements = judge_shard(images, roi_masks, coarse_captions, caption_batches, caption_judge)
    df = assemble_triplets(images, roi_masks, coarse_captions, caption_batches, licences, judgements, caption_judge.min_score)
    ok = df.filter(~pl.col("quarantined"))
    first = ok.head(1)
    rows = list(df.iter_rows(named=True))
    quality = caption_quality(
        [(r["caption"] or "", r.get("section_texture") or "", measurements_from_row(r)) for r in rows], [list(r["labels"] or []) for r in rows]
    )
    yield Output(
        df,
        metadata={
            "triplets": MetadataValue.int(df.height),
            "quarantined": MetadataValue.int(df.height - ok.height),
            "judged": MetadataValue.int(judgements.height),
            "modalities": MetadataValue.json(dict(df.group_by("modality").len().iter_rows()) if df.height else {}),
            "sample_caption": MetadataValue.md(f"**{first['roi_id'][0]}**\n\n{first['caption'][0]}" if first.height else "_none_"),
            "caption_quality": MetadataValue.json(quality),
            "quarantine_reasons": table_md(df.filter(pl.col("quarantined")).select("triplet_id", "quarantine_reasons")),
            **preview(storage, first["overlay_uri"][0] if first.height else None, "triplet overlay"),
        },
    )
    counts = quarantine_counts(df)
    kept = df.height == caption_batches.height and not df.filter(pl.col("quarantined") != (pl.col("quarantine_reasons").list.len() > 0)).height
    yield AssetCheckResult(
        check_name="caption_problems",
        passed=kept,
        metadata={
            "quarantined": MetadataValue.int(df.height - ok.height),
            "records": MetadataValue.int(df.height),
            "per_problem_code": MetadataValue.md(
                "| problem code | records |\n|---|---|\n" + "".join(f"| `{k}` | {v} |\n" for k, v in counts.items()) if counts else "_none_"
            ),
            **{f"problem:{k}": MetadataValue.int(v) for k, v in counts.items()},
        },
        description="Quarantined records per problem code; none dropped.",
    )
    faults = {k: v for k, v in quality.items() if (k.startswith("artefacts_") or k == "ontology_fragments") and v}
    if quality.get("claims_agreeing_share", 1.0) < 1.0:
        faults["claims_agreeing_share"] = quality["claims_agreeing_share"]
    if quality.get("unrecorded_disease_share", 0.0) > 0.0:
        faults["unrecorded_disease_share"] = quality["unrecorded_disease_share"]
    yield AssetCheckResult(
        check_name="caption_quality",
        passed=not faults,
        severity=AssetCheckSeverity.WARN,
        metadata={**{k: MetadataValue.float(float(v)) if isinstance(v, float) else MetadataValue.text(str(v)) for k, v in quality.items()}, "faults": MetadataValue.json(faults)},
    )
    unnamed = [r["triplet_id"] for r in ok.iter_rows(named=True) if not modality_named(r["caption"], r["modality"])]
    yield AssetCheckResult(
        check_name="captions_name_modality",
        passed=not unnamed,
        metadata={"failing": MetadataValue.json(unnamed[:50])},
        description="Every non-quarantined triplet has a non-empty caption naming its modality.",
    )
