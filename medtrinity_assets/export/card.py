"""The dataset card (README.md of a release): counts, distributions, licences, splits, files, schema.

It starts with Hugging Face YAML front matter naming the Parquet split files, so
``datasets.load_dataset("<release folder>")`` works as well as loading the files directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import yaml

from .config import SPLITS, ReleaseConfig
from .schema import RELEASE_SCHEMA_VERSION, VQA_COLUMNS, schema_markdown
from .statistics import ReleaseStatistics

STATISTICS_FIGURE = "card/statistics.png"


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


def front_matter(config: ReleaseConfig, split_files: dict[str, str]) -> str:
    meta = {
        "pretty_name": config.title or config.name,
        "license": "other",
        "task_categories": ["image-to-text", "visual-question-answering"],
        "tags": ["medical", "medtrinity", "image-roi-description"],
        "configs": [{"config_name": "default", "data_files": [{"split": s, "path": split_files[s]} for s in SPLITS if s in split_files]}],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def render_card(
    config: ReleaseConfig,
    stats: ReleaseStatistics,
    sources: list[SourceEntry],
    quarantine: dict,
    rejects: pl.DataFrame,
    decontamination: dict,
    files: dict,
    input_fingerprint: str,
) -> str:
    """Markdown of the dataset card."""
    n = stats.records
    parts = [front_matter(config, files.get("parquet", {}))]
    parts.append(f"# {config.title or config.name}\n")
    if config.description:
        parts.append(config.description.strip() + "\n")
    parts.append(
        f"Release `{config.name}` version {config.version} (release schema {RELEASE_SCHEMA_VERSION}), built by the "
        f"medtrinity pipeline from triplet manifests with fingerprint `{input_fingerprint}`.\n\n"
        f"**{n} records** (image–ROI–description triplets) from **{stats.images} images**: {stats.rois} ROI records "
        f"and {stats.whole_image_records} whole-image records, {len([s for s in sources if s.status == 'included'])} sources, "
        f"{stats.groups} split groups. Licence filter: {'only redistributable sources' if config.redistributable_only else 'all sources (internal use; check each licence before sharing)'}.\n"
    )
    parts.append(f"![statistics]({STATISTICS_FIGURE})\n")

    parts.append("## Loading\n")
    pq = files.get("parquet", {})
    data_files = ", ".join(f'"{s}": "{p}"' for s, p in pq.items())
    parts.append(
        "```python\n"
        "import datasets, polars as pl\n"
        f"ds = datasets.load_dataset(\"parquet\", data_files={{{data_files}}})  # paths relative to this folder\n"
        f"df = pl.read_parquet(\"{next(iter(pq.values()), 'data/train.parquet')}\")\n"
        "# image files: the `image` and `overlay` columns are paths relative to this folder\n"
        "```\n"
    )
    parts.append(
        md_table(
            ["format", "files", "what"],
            [
                ["Parquet", ", ".join(f"`{p}`" for p in pq.values()), "one row per record, schema below"],
                ["LLaVA JSON", ", ".join(f"`{p}`" for p in files.get("llava", {}).values()), "caption conversations (image = ROI overlay, response = caption)"],
                [
                    "WebDataset",
                    f"`webdataset/<split>-NNNNN.tar` ({files.get('n_shards', 0)} shards), `webdataset/index.json`, `webdataset/SHA256SUMS`",
                    "`<key>.png` clean image, `<key>.overlay.png`, `<key>.json` record; every shard verified by reading it back",
                ],
                ["VQA", "`vqa/<split>.parquet`, `vqa/llava_<split>.json` (from the `vqa_pairs` asset)", "closed and open questions on modality, organ, location, finding, size"],
                ["images", "`images/…`, `overlays/…`", "clean PNGs and ROI overlays referenced by the records"],
                ["gallery", "`gallery/index.html`", f"{files.get('gallery_samples', 0)} sampled records for review"],
                ["checksums", "`checksums.sha256`", "SHA-256 of every file (`sha256sum -c checksums.sha256`)"],
            ],
        )
        + "\n"
    )

    parts.append("## Splits\n")
    fr = config.splits.as_dict()
    parts.append(
        f"Records are split by **patient** (ingestion's salted patient hash), else by the volume/study a source's "
        f"file name encodes (`group_patterns`), else by source file — every slice of a volume stays together. "
        f"A group goes to a split by a salted hash (salt `{config.split_salt}`; fractions train {fr['train']}, val {fr['val']}, "
        f"test {fr['test']} of groups), so assignment is deterministic and no group spans two splits.\n"
    )
    parts.append(
        md_table(
            ["split", "records", "images", "groups", "share of records"],
            [[s, v["records"], v["images"], v["groups"], _pct(v["records"], n)] for s, v in stats.splits.items()],
        )
        + "\n"
    )

    parts.append("## Composition\n")
    parts.append("### Modality\n")
    parts.append(md_table(["modality", "records", "images", "share"], [[m, c, stats.images_by_modality.get(m, 0), _pct(c, n)] for m, c in stats.by_modality]) + "\n")
    parts.append("### Source\n")
    parts.append(md_table(["source", "records", "images", "share"], [[s, c, stats.images_by_source.get(s, 0), _pct(c, n)] for s, c in stats.by_source]) + "\n")
    parts.append("### Organ / body region\n")
    parts.append(md_table(["organ", "records"], [[o, c] for o, c in stats.by_organ[:40]]) + "\n")
    parts.append("### ROI label\n")
    more = f"\n\n… and {len(stats.by_label) - 40} more labels" if len(stats.by_label) > 40 else ""
    parts.append(md_table(["label", "records"], [[lab, c] for lab, c in stats.by_label[:40]]) + more + "\n")
    parts.append("### Image-level labels (findings)\n")
    parts.append(md_table(["label", "images"], [[lab, c] for lab, c in stats.by_image_label]) + "\n")
    parts.append("### ROI origin\n")
    parts.append(md_table(["origin", "records"], [[o, c] for o, c in stats.by_origin]) + "\n")

    parts.append("## Distributions\n")
    parts.append(
        md_table(
            ["quantity", "min", "p5", "median", "mean", "p95", "max"],
            [
                _summary_row("caption length (words)", stats.caption_words_summary),
                _summary_row("ROI area (fraction of image)", stats.roi_area_summary, "{:.4g}"),
                _summary_row("knowledge passages per record", stats.passages_per_record),
            ],
        )
        + "\n"
    )

    parts.append("## Quality: quarantine, rejects, decontamination\n")
    reasons = quarantine.get("reasons", {})
    parts.append(
        f"**Quarantine.** {quarantine.get('quarantined', 0)} of the selected sources' triplets failed a caption or geometry check "
        f"and are {'included (flagged)' if config.include_quarantined else 'not included'}."
        + (" Reasons: " + ", ".join(f"`{k}` ({v})" for k, v in sorted(reasons.items(), key=lambda t: -t[1])) if reasons else "")
        + "\n"
    )
    if rejects.height:
        rej = rejects.group_by("stage", "dataset", "reason").len().sort("stage", "dataset", "reason")
        parts.append(f"**Rejects.** {rejects.height} input{'s' if rejects.height != 1 else ''} could not be used (recorded under `rejects/` in the pipeline storage):\n")
        parts.append(md_table(["stage", "source", "reason", "count"], [list(r) for r in rej.iter_rows()]) + "\n")
    else:
        parts.append("**Rejects.** No input of the included sources was rejected.\n")
    bench = decontamination.get("benchmarks", {})
    if bench:
        parts.append(
            f"**Decontamination.** Clean images within {config.phash_max_distance} bits (perceptual hash) of a benchmark image were "
            f"{'removed' if decontamination.get('action') == 'drop' else 'flagged (`benchmark_match`)'}:\n"
        )
        parts.append(
            md_table(
                ["benchmark", "benchmark images", "unreadable files", "release images matched", "records matched"],
                [[b, v["benchmark_images"], v["unreadable_files"], v["matched_release_images"], v["matched_records"]] for b, v in bench.items()],
            )
            + "\n"
        )
    else:
        parts.append("**Decontamination.** No benchmark folder configured (`benchmark_dirs` in the release definition).\n")

    parts.append("## Sources, licences and citations\n")
    parts.append(
        md_table(
            ["source", "title", "licence", "redistributable", "citation", "in this release"],
            [[s.name, s.title, s.licence, "yes" if s.redistributable else "no", s.citation or "-", f"{s.status} ({s.records} records)"] for s in sources],
        )
        + "\n"
    )
    parts.append(
        "Each record carries its source's licence (`licence`, `redistributable`). Respect every source's licence "
        "when you use or share this release; cite the sources above and MedTrinity-25M (Xie et al., 2024) for the method.\n"
    )

    parts.append("## Provenance\n")
    parts.append(
        "Every record names its source file and slice, the ingestion policy, the ROI origin, the knowledge passages "
        "given to the caption writer, the prompt version and hash, and the caption backend, model and settings. "
        "Clean images are never drawn on; overlays are separate files.\n"
    )
    parts.append(f"## Record schema (version {RELEASE_SCHEMA_VERSION})\n")
    parts.append(schema_markdown() + "\n")
    parts.append("### VQA pair schema\n")
    parts.append(schema_markdown(VQA_COLUMNS) + "\n")
    return "\n".join(parts)
