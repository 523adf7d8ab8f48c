"""The PHI hooks of the stages: screening in `images`, record reasons in `triplets`.

`screen_item` runs in the images stage right after an item is loaded, before its slices are
hashed, encoded or written: under ``mask`` the text regions are filled in the slice pixels, so the
clean PNG, its hashes and every overlay drawn from it later never hold them. `triplet_phi` adds
the image's PHI columns to each triplet and quarantines the record on a pixel verdict or a PHI
hit in any of its text fields.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import polars as pl

from medtrinity_assets.phi.headers import Identities, phrase_hashes, read_identities
from medtrinity_assets.phi.ocr import get_engine
from medtrinity_assets.phi.patterns import contains_phrase
from medtrinity_assets.phi.pixels import MASKED, QUARANTINED, PixelVerdict, mask_native, screen_pixels
from medtrinity_assets.phi.policy import PhiPolicy
from medtrinity_assets.phi.text_scan import field_reasons
from medtrinity_assets.records import Slice2D, SourceItem
from medtrinity_assets.schema import SECTION_COLUMNS

log = logging.getLogger(__name__)

#: triplet text fields scanned for PHI (metadata, captions and their sections)
TRIPLET_TEXT_FIELDS = (
    "caption",
    *SECTION_COLUMNS,
    "coarse_caption",
    "roi_label",
    "labels",
    "organs",
    "modality",
    "position",
    "judge_reason",  # the caption judge's free text can echo the caption
    "source_file",
)


def _columns(policy: PhiPolicy, verdict: PixelVerdict, hashes: list[str], ocr: str, extra_reasons: list[str]) -> dict:
    reasons = sorted(set(verdict.reasons) | set(extra_reasons))
    return {
        "phi_policy": policy.model_dump_json(),
        "phi_action": QUARANTINED if reasons else verdict.action,
        "phi_text_regions": len(verdict.regions),
        "phi_text_boxes": [list(r.box) for r in verdict.regions],
        "phi_kinds": verdict.kinds,
        "phi_reasons": reasons,
        "phi_header_hashes": hashes,
        "phi_ocr": ocr,
    }


def screen_item(item: SourceItem, slices: list[Slice2D], policy: PhiPolicy | None, salt_env: str) -> list[dict]:
    """PHI columns for each slice of an item (masking slice pixels in place when the policy says so).

    DICOM header identities are read here, held in memory to recognise them in pixels and in the
    slice meta, and kept only as keyed hashes. A screening failure quarantines the slices
    (``phi_pixels:screen_failed``); it never loses them.
    """
    policy = policy or PhiPolicy()
    try:
        fmt = str(slices[0].meta.get("source_format") or item.format) if slices else item.format
        identities = read_identities(item.image_path, fmt)
    except Exception:  # noqa: BLE001 - unreadable headers hold nothing to compare
        identities = Identities()
    hashes = phrase_hashes(identities, salt_env) if identities else []
    engine = get_engine() if policy.ocr else None
    ocr = engine.version if engine is not None else ""
    out = []
    for sl in slices:
        leaked = ["phi_text:ingest_meta:header_name"] if identities and contains_phrase(json.dumps(sl.meta, default=str), identities.phrases) else []
        try:
            if not sl.pixels.flags.writeable:
                sl.pixels = sl.pixels.copy()
            verdict = screen_pixels(sl.pixels, policy, sl.meta.get("burned_in_annotation") is True, engine, identities)
            if verdict.action == MASKED and getattr(sl, "native", None) is not None:
                sl.native = mask_native(sl.native, [r.box for r in verdict.regions])
        except Exception as exc:  # noqa: BLE001 - the record stays, quarantined, with the reason
            log.warning("PHI screening failed for %s/%s: %s", item.dataset, item.item_id, type(exc).__name__)
            verdict = PixelVerdict(QUARANTINED, [], ["phi_pixels:screen_failed"])
        out.append(_columns(policy, verdict, hashes, ocr, leaked))
    return out


def _salt_env(ingest_policy_json: str | None) -> str:
    try:
        return str(json.loads(ingest_policy_json or "{}").get("patient_salt_env") or "MEDTRINITY_PATIENT_SALT")
    except (ValueError, AttributeError):
        return "MEDTRINITY_PATIENT_SALT"


def triplet_phi(rows: list[dict], images: pl.DataFrame) -> list[dict]:
    """Each triplet row with its image's PHI columns and PHI quarantine reasons (in place)."""
    if not rows:
        return rows
    cols = ["image_id", "phi_policy", "phi_action", "phi_text_regions", "phi_reasons", "phi_header_hashes", "ingest_policy"]
    by_image: dict[str, Mapping] = {r["image_id"]: r for r in images.select(cols).iter_rows(named=True)}
    shard_hashes = {h for r in by_image.values() for h in (r["phi_header_hashes"] or [])}
    for row in rows:
        img = by_image[row["image_id"]]
        fields = {name: row.get(name) for name in TRIPLET_TEXT_FIELDS}
        reasons = list(img["phi_reasons"] or []) + field_reasons(fields, shard_hashes, _salt_env(img["ingest_policy"]))
        row["phi_policy"] = img["phi_policy"]
        row["phi_action"] = img["phi_action"]
        row["phi_text_regions"] = img["phi_text_regions"]
        row["quarantine_reasons"] = sorted(set(row["quarantine_reasons"]) | set(reasons))
        row["quarantined"] = bool(row["quarantine_reasons"])
    return rows


def phi_clear(images: pl.DataFrame) -> pl.DataFrame:
    """Images whose pixels may be shown (UI previews): not quarantined for PHI."""
    return images.filter(pl.col("phi_action") != QUARANTINED) if "phi_action" in images.columns else images


def phi_summary(images: pl.DataFrame) -> dict[str, int]:
    """Images per PHI action, plus how many carried text (UI metadata of the images asset)."""
    if images.is_empty():
        return {}
    out = {str(k): int(v) for k, v in images.group_by("phi_action").len().iter_rows()}
    out["with_text"] = int((images["phi_text_regions"] > 0).sum())
    return out
