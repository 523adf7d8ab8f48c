"""The dataset card (README.md of a release) and its LICENSE.md, built from data.

The YAML front matter is a dict dumped with ``yaml.safe_dump``: licence (``other`` + name + link
to LICENSE.md, as the sources' licences differ), language, size category, task categories,
``dataset_info`` (features and split sizes of each view) and ``configs`` (``full``, the default,
and ``minimal``), so ``datasets.load_dataset("<release folder>", "minimal")`` works. Fixed
metadata is in ``card.yaml``; the body is ``card_template.md`` (``string.Template``) filled with
tables rendered from the release statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

import polars as pl
import yaml

from medtrinity_resources.yaml_config import read_yaml_mapping

from .config import SPLITS, ReleaseConfig
from .hf import MINIMAL_COLUMNS, card_features, minimal_frame
from .schema import RELEASE_SCHEMA, RELEASE_SCHEMA_VERSION, VQA_COLUMNS, schema_markdown
from .statistics import ReleaseStatistics

STATISTICS_FIGURE = "card/statistics.png"
LICENSE_FILE = "LICENSE.md"
CARD_META = Path(__file__).with_name("card.yaml")
CARD_TEMPLATE = Path(__file__).with_name("card_template.md")


@dataclass
class SourceEntry:
    """One catalog source as the card lists it."""

    name: str
    title: str
    licence: str
    citation: str
    redistributable: bool
    status: str  # included | excluded: not redistributable | no triplets materialised
    records: int


def md_table(header: list[str], rows: list[list]) -> str:
    if not rows:
        return "_none_"
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ") for v in r) + " |")
    return "\n".join(out)


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}%" if total else "-"


def _summary_row(name: str, s: dict[str, float], fmt: str = "{:.0f}") -> list:
    if not s:
        return [name, "-", "-", "-", "-", "-", "-"]
    return [name] + [fmt.format(s[k]) for k in ("min", "p5", "median", "mean", "p95", "max")]


def card_meta() -> dict:
    return read_yaml_mapping(CARD_META, "dataset card metadata")


def size_category(n: int, buckets: list) -> str:
    for bound, name in buckets:
        if n < bound:
            return name
    return buckets[-1][1]


def front_matter(config: ReleaseConfig, stats: ReleaseStatistics, files: dict, sizes: dict[str, int] | None = None) -> dict:
    """The card's YAML metadata as a dict (Hub dataset-card keys)."""
    meta = card_meta()
    sizes = sizes or {}
    views = {"full": files.get("parquet", {}), "minimal": files.get("parquet_minimal", {})}
    schemas = {"full": RELEASE_SCHEMA, "minimal": minimal_frame(pl.DataFrame(schema=RELEASE_SCHEMA)).schema}
    dataset_info = []
    for view, paths in views.items():
        arrow = files.get("arrow_bytes", {})
        splits = [{"name": s, "num_bytes": int(arrow.get(paths[s], 0)), "num_examples": int(stats.splits[s]["records"])} for s in SPLITS if s in paths]
        info = {"config_name": view, "features": card_features(schemas[view]), "splits": splits}
        info["download_size"] = int(sum(sizes.get(p, 0) for p in paths.values()))  # bytes of the Parquet files
        info["dataset_size"] = sum(s["num_bytes"] for s in splits)  # Arrow bytes, as `datasets` counts them
        dataset_info.append(info)
    configs = []
    for view, paths in views.items():
        entry = {"config_name": view, "data_files": [{"split": s, "path": paths[s]} for s in SPLITS if s in paths]}
        if view == "full":
            entry["default"] = True
        configs.append(entry)
    return {
        "pretty_name": config.title or config.name,
        "license": meta["license"],
        "license_name": meta["license_name"],
        "license_link": meta["license_link"],
        "language": list(meta["language"]),
        "size_categories": [size_category(stats.records, meta["size_categories"])],
        "task_categories": list(meta["task_categories"]),
        "tags": list(meta["tags"]),
        "dataset_info": dataset_info,
        "configs": configs,
    }


def license_markdown(config: ReleaseConfig, sources: list[SourceEntry]) -> str:
    """LICENSE.md: the licence of every source in the release (the card's ``license_link``)."""
    included = [s for s in sources if s.status == "included"]
    return (
        f"# Licences of release `{config.name}`\n\n"
        "This release combines sources under different licences; each record's `licence` column names its "
        "source's. Using or sharing a record means following that source's licence.\n\n"
        + md_table(["source", "title", "licence", "redistributable", "citation"], [[s.name, s.title, s.licence, "yes" if s.redistributable else "no", s.citation or "-"] for s in included])
        + "\n"
    )


def _files_table(files: dict) -> str:
    pq, mini = files.get("parquet", {}), files.get("parquet_minimal", {})
    return md_table(
        ["format", "files", "what"],
        [
            ["Parquet, `full`", ", ".join(f"`{p}`" for p in pq.values()), "one row per record, schema below; `image` and `overlay` embedded (HF `Image`)"],
            ["Parquet, `minimal`", ", ".join(f"`{p}`" for p in mini.values()), "`image`, `id`, `caption`, `source` (MedTrinity-25M layout)"],
            ["LLaVA JSON", ", ".join(f"`{p}`" for p in files.get("llava", {}).values()), "caption conversations (image = ROI overlay, response = caption)"],
            [
                "WebDataset",
                f"`webdataset/<split>-NNNNN.tar` ({files.get('n_shards', 0)} shards), `webdataset/index.json`, `webdataset/SHA256SUMS`",
                "one sample per image: `<key>.png` clean image, `<key>.txt` captions (one line per record), `<key>.json` records, "
                "`<key>.<nnn>.overlay.png` / `.txt` per ROI record; every shard verified by reading it back",
            ],
            ["VQA", "`vqa/<split>.parquet`, `vqa/llava_<split>.json` (from the `vqa_pairs` asset)", "closed and open questions on modality, organ, location, finding, size"],
            ["images", "`images/…`, `overlays/…`", "clean PNGs and ROI overlays (the files the LLaVA JSON and gallery reference)"],
            ["gallery", "`gallery/index.html`", f"{files.get('gallery_samples', 0)} sampled records for review"],
            ["licences", f"`{LICENSE_FILE}`", "licence of every included source"],
            ["checksums", "`checksums.sha256`", "SHA-256 of every file (`sha256sum -c checksums.sha256`)"],
        ],
    )


def _quality(config: ReleaseConfig, quarantine: dict, rejects: pl.DataFrame, decontamination: dict) -> dict[str, str]:
    reasons = quarantine.get("reasons", {})
    q = (
        f"**Quarantine.** {quarantine.get('quarantined', 0)} of the selected sources' triplets failed a caption or geometry check "
        f"and are {'included (flagged)' if config.include_quarantined else 'not included'}."
        + (" Reasons: " + ", ".join(f"`{k}` ({v})" for k, v in sorted(reasons.items(), key=lambda t: -t[1])) if reasons else "")
    )
    if rejects.height:
        rej = rejects.group_by("stage", "dataset", "reason").len().sort("stage", "dataset", "reason")
        r = (
            f"**Rejects.** {rejects.height} input{'s' if rejects.height != 1 else ''} could not be used (recorded under `rejects/` in the pipeline storage):\n\n"
            + md_table(["stage", "source", "reason", "count"], [list(x) for x in rej.iter_rows()])
        )
    else:
        r = "**Rejects.** No input of the included sources was rejected."
    bench = decontamination.get("benchmarks", {})
    if bench:
        d = (
            f"**Decontamination.** Clean images within {config.phash_max_distance} bits (perceptual hash) of a benchmark image were "
            f"{'removed' if decontamination.get('action') == 'drop' else 'flagged (`benchmark_match`)'}:\n\n"
            + md_table(
                ["benchmark", "benchmark images", "unreadable files", "release images matched", "records matched"],
                [[b, v["benchmark_images"], v["unreadable_files"], v["matched_release_images"], v["matched_records"]] for b, v in bench.items()],
            )
        )
    else:
        d = "**Decontamination.** No benchmark folder configured (`benchmark_dirs` in the release definition)."
    return {"quarantine": q, "rejects": r, "decontamination": d}


def render_card(
    config: ReleaseConfig,
    stats: ReleaseStatistics,
    sources: list[SourceEntry],
    quarantine: dict,
    rejects: pl.DataFrame,
    decontamination: dict,
    files: dict,
    input_fingerprint: str,
    sizes: dict[str, int] | None = None,
) -> str:
    """Markdown of the dataset card: YAML front matter (`front_matter`) + the filled template."""
    n = stats.records
    pq = files.get("parquet", {})
    fr = config.splits.as_dict()
    more = f"\n\n… and {len(stats.by_label) - 40} more labels" if len(stats.by_label) > 40 else ""
    values = {
        "front_matter": yaml.safe_dump(front_matter(config, stats, files, sizes), sort_keys=False, allow_unicode=True),
        "title": config.title or config.name,
        "description": (config.description.strip() + "\n") if config.description else "",
        "name": config.name,
        "version": config.version,
        "schema_version": RELEASE_SCHEMA_VERSION,
        "fingerprint": input_fingerprint,
        "records": n,
        "images": stats.images,
        "rois": stats.rois,
        "whole": stats.whole_image_records,
        "n_sources": len([s for s in sources if s.status == "included"]),
        "groups": stats.groups,
        "licence_filter": "only redistributable sources" if config.redistributable_only else "all sources (internal use; check each licence before sharing)",
        "figure": STATISTICS_FIGURE,
        "data_files": ", ".join(f'"{s}": "{p}"' for s, p in pq.items()),
        "first_parquet": next(iter(pq.values()), "data/full/train.parquet"),
        "files_table": _files_table(files),
        "split_salt": config.split_salt,
        "fractions": ", ".join(f"{s} {fr[s]}" for s in SPLITS),
        "splits_table": md_table(
            ["split", "records", "images", "groups", "share of records"],
            [[s, v["records"], v["images"], v["groups"], _pct(v["records"], n)] for s, v in stats.splits.items()],
        ),
        "modality_table": md_table(["modality", "records", "images", "share"], [[m, c, stats.images_by_modality.get(m, 0), _pct(c, n)] for m, c in stats.by_modality]),
        "source_table": md_table(["source", "records", "images", "share"], [[s, c, stats.images_by_source.get(s, 0), _pct(c, n)] for s, c in stats.by_source]),
        "organ_table": md_table(["organ", "records"], [[o, c] for o, c in stats.by_organ[:40]]),
        "label_table": md_table(["label", "records"], [[lab, c] for lab, c in stats.by_label[:40]]) + more,
        "image_label_table": md_table(["label", "images"], [[lab, c] for lab, c in stats.by_image_label]),
        "origin_table": md_table(["origin", "records"], [[o, c] for o, c in stats.by_origin]),
        "distribution_table": md_table(
            ["quantity", "min", "p5", "median", "mean", "p95", "max"],
            [
                _summary_row("caption length (words)", stats.caption_words_summary),
                _summary_row("ROI area (fraction of image)", stats.roi_area_summary, "{:.4g}"),
                _summary_row("knowledge passages per record", stats.passages_per_record),
            ],
        ),
        **_quality(config, quarantine, rejects, decontamination),
        "sources_table": md_table(
            ["source", "title", "licence", "redistributable", "citation", "in this release"],
            [[s.name, s.title, s.licence, "yes" if s.redistributable else "no", s.citation or "-", f"{s.status} ({s.records} records)"] for s in sources],
        ),
        "schema_table": schema_markdown(),
        "minimal_table": md_table(["column", "meaning"], [[f"`{c}`", doc] for c, doc in MINIMAL_COLUMNS]),
        "vqa_table": schema_markdown(VQA_COLUMNS),
    }
    return Template(CARD_TEMPLATE.read_text(encoding="utf-8")).substitute(values)
