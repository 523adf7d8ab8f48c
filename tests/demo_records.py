"""Caption facts of the demo's real records: every bundled source through the production stage
functions (source manifest -> ingest_shard -> ground_shard -> coarse captions -> facts_for), with
no knowledge retrieval (no embedder needed). Used by the checks bench and the adversarial tests.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def demo_facts(sources: list[str] | None = None, max_per_source: int | None = None, workdir: str | None = None):
    """[(dataset, roi_id, CaptionFacts)] for the bundled sources (all by default)."""
    from medtrinity_assets.catalog import load_catalog
    from medtrinity_assets.stages.captions import ShardFacts, build_coarse_captions
    from medtrinity_assets.stages.images import ingest_shard
    from medtrinity_assets.stages.rois import ground_shard
    from medtrinity_assets.stages.sources import build_source_manifest
    from medtrinity_resources.storage import MedtrinityStorage

    catalog = load_catalog(REPO / "data" / "catalog.yaml")
    tmp = workdir or tempfile.mkdtemp(prefix="medtrinity-checks-")
    storage = MedtrinityStorage(root=str(Path(tmp) / "store"))
    out = []
    for source in catalog.sources:
        if sources and source.name not in sources:
            continue
        manifest = build_source_manifest(catalog, source)
        n = 0
        for shard in sorted(set(manifest["shard"].to_list())):
            part = manifest.filter(manifest["shard"] == shard)
            images = ingest_shard(part, {source.name: source.ingest}, storage, {source.name: source.rois}, phi={source.name: source.phi}).images
            if images.is_empty():
                continue
            rois = ground_shard(images, {source.name: source.rois}, storage).rois
            coarse = build_coarse_captions(images, rois)
            shard_facts = ShardFacts(images, rois, coarse)
            for r in rois.iter_rows(named=True):
                facts = shard_facts(r)
                out.append((source.name, r["roi_id"], facts))
                n += 1
                if max_per_source and n >= max_per_source:
                    break
            if max_per_source and n >= max_per_source:
                break
    return out


def shard_frames(source_name: str, workdir: str):
    """(images, rois, coarse, storage, licences) of a bundled source's first shard, through the
    production stage functions."""
    from medtrinity_assets.catalog import load_catalog
    from medtrinity_assets.stages.captions import build_coarse_captions
    from medtrinity_assets.stages.images import ingest_shard
    from medtrinity_assets.stages.rois import ground_shard
    from medtrinity_assets.stages.sources import build_source_manifest
    from medtrinity_resources.storage import MedtrinityStorage

    catalog = load_catalog(REPO / "data" / "catalog.yaml")
    source = catalog.source(source_name)
    storage = MedtrinityStorage(root=str(Path(workdir) / "store"))
    manifest = build_source_manifest(catalog, source)
    shard = sorted(set(manifest["shard"].to_list()))[0]
    part = manifest.filter(manifest["shard"] == shard)
    images = ingest_shard(part, {source.name: source.ingest}, storage, {source.name: source.rois}, phi={source.name: source.phi}).images
    rois = ground_shard(images, {source.name: source.rois}, storage).rois
    coarse = build_coarse_captions(images, rois)
    licences = {s.name: (s.licence, s.redistributable) for s in catalog.sources}
    return images, rois, coarse, storage, licences
