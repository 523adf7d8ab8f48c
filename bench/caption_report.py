"""Caption quality report (issue 11): appearance claims, agreement with measurements, distinct-2,
sentence repetition, wording artefacts.

    python bench/caption_report.py --storage <root>        # triplets of a run (e.g. medtrinity demo)
    python bench/caption_report.py --sources               # compose from the bundled sources' ROIs

``--storage`` reads ``manifests/triplets/**.parquet`` under a local storage root (caption,
colour/texture section and measurement columns). ``--sources`` runs ingest and ROI grounding on
data/sources into a temporary storage (no knowledge, no Dagster) and composes a caption per ROI.
Targets: appearance claims >= 60%, agreement 100%, distinct-2 >= 0.25, max sentence share < 10%,
0 artefacts. Distinct-2 is also printed within each source: a corpus dominated by one source's
records (the demo: 89 of 170 from six slices of two volumes) repeats that source's facts. Last,
distinct-2 at a fixed sample of 50 captions beside bundled human-written text (MedQuAD answers cut
to the captions' mean length): distinct-n of a whole corpus falls as it grows, so only the
size-matched pair compares wording across corpora (reported; the target above is unchanged), and
the same human-written reference at the whole corpus' size, beside the corpus figure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from medtrinity_assets.captions import compose_caption  # noqa: E402
from medtrinity_assets.captions.quality import caption_quality, distinct_n, distinct_n_sampled  # noqa: E402
from medtrinity_assets.stages.facts import measurements_from_row  # noqa: E402

TARGETS = {
    "appearance_claim_share": ">= 0.60",
    "claims_agreeing_share": "= 1.00",
    "distinct_2": ">= 0.25",
    "max_sentence_share": "< 0.10",
    "ontology_fragments": "= 0",
    "unrecorded_disease_share": "= 0",
}


def from_storage(root: Path) -> list:
    files = sorted(root.glob("manifests/triplets/**/*.parquet"))
    if not files:
        raise SystemExit(f"no triplet manifests under {root}/manifests/triplets")
    df = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    rows = list(df.iter_rows(named=True))
    records = [(r["caption"] or "", r.get("section_texture") or "", measurements_from_row(r)) for r in rows]
    return records, [list(r["labels"] or []) for r in rows], [r["dataset"] for r in rows]


def from_sources() -> list:
    from medtrinity_assets.catalog import load_catalog
    from medtrinity_assets.stages.captions import ShardFacts, build_coarse_captions
    from medtrinity_assets.stages.images import ingest_shard
    from medtrinity_assets.stages.rois import ground_shard
    from medtrinity_assets.stages.sources import source_manifest_and_findings
    from medtrinity_resources.storage import MedtrinityStorage

    cat = load_catalog(REPO / "data" / "catalog.yaml")
    store = MedtrinityStorage(root=tempfile.mkdtemp(prefix="caption-report-"))
    records, findings, sources = [], [], []
    for source in cat.sources:
        manifest, _ = source_manifest_and_findings(cat, source)
        for shard in sorted(set(manifest["shard"].to_list())):
            part = manifest.filter(pl.col("shard") == shard)
            images = ingest_shard(part, {source.name: source.ingest}, store, {source.name: source.rois}, phi={source.name: source.phi}).images
            rois = ground_shard(images, {source.name: source.rois}, store).rois
            shard_facts = ShardFacts(images, rois, build_coarse_captions(images, rois))
            for r in rois.iter_rows(named=True):
                facts = shard_facts(r)
                text, sections = compose_caption(facts, seed=r["roi_id"])
                records.append((text, sections["texture"], facts.measurements))
                findings.append(list(facts.image_labels))
                sources.append(source.name)
    return records, findings, sources


SAMPLE = 50  # captions per draw of caption_quality's distinct_2_at_50


def reference_texts(tokens: int) -> list[str]:
    """Human-written reference at the captions' mean length: bundled MedQuAD answers (NIH
    consumer-health text, CC BY 4.0), each cut to its first `tokens` words."""
    from medtrinity_assets.knowledge.corpus_io import iter_json_lines

    answers = [(rec.get("answer") or "").split() for _, rec in iter_json_lines(REPO / "data" / "knowledge" / "medquad" / "medquad_qa.jsonl.gz")]
    return [" ".join(words[:tokens]) for words in answers if len(words) >= tokens]


def size_matched(texts: list[str], at_sample: float) -> None:
    """distinct-2 of equal-size samples (`at_sample`: the captions' distinct_2_at_50), beside
    human-written text of the same length: the corpus figure falls as the corpus grows."""
    tokens = max(1, round(sum(len(t.split()) for t in texts) / max(len(texts), 1)))
    print(f"distinct_2 at {SAMPLE} captions (mean of 20 random draws; size-matched, reported, not a target):")
    print(f"  {'these captions':38s} {at_sample:10.3f}")
    reference = reference_texts(tokens)
    print(f"  {'human-written: MedQuAD answers cut to ' + str(tokens) + ' words':38s} {distinct_n_sampled(reference, 2, SAMPLE):10.3f}")
    if len(texts) > SAMPLE:  # the same reference at the whole corpus' size, beside the corpus figure
        print(f"distinct_2 at {len(texts)} captions (this corpus' size):")
        print(f"  {'these captions':38s} {distinct_n(texts, 2):10.3f}")
        print(f"  {'human-written: MedQuAD answers, as above':38s} {distinct_n_sampled(reference, 2, len(texts)):10.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--storage", type=Path)
    group.add_argument("--sources", action="store_true")
    args = ap.parse_args()
    records, findings, sources = from_storage(args.storage) if args.storage else from_sources()
    quality = caption_quality(records, findings)
    for key, value in quality.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{key:40s} {shown:>10s}  {TARGETS.get(key, '')}")
    print("distinct_2 within each source (records):")
    for name in sorted(set(sources)):
        texts = [r[0] for r, s in zip(records, sources) if s == name]
        print(f"  {name:38s} {distinct_n(texts, 2):10.3f}  ({len(texts)})")
    size_matched([r[0] for r in records], float(quality["distinct_2_at_50"]))


if __name__ == "__main__":
    main()
