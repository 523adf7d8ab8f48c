"""Static HTML gallery of sampled records for human review (``gallery/index.html``).

Each sample is an ``<article class="sample">`` with the ROI overlay (if the record has an ROI) and the clean image (files of
the release, linked relatively, so the page works wherever the release folder is), the caption,
its five sections, the cited passage ids and the provenance line. No external resource is
loaded. A small inline script counts the images that decoded and writes the count into
``<body data-images-loaded=…>``, so a headless browser can tell the page rendered.
"""

from __future__ import annotations

import hashlib
import html
from collections import defaultdict

import polars as pl

from medtrinity_assets.schema import SECTION_COLUMNS

GALLERY_FILE = "gallery/index.html"
SECTION_TITLES = {
    "section_modality": "Modality",
    "section_organs": "Organs",
    "section_roi": "ROI location and look",
    "section_texture": "Texture / colour",
    "section_relations": "ROI–region relationship",
}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem;background:#f6f7f9;color:#1d2330}
h1{font-size:1.4rem;margin:0 0 .3rem} .lead{color:#555;margin:0 0 1.2rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1rem}
.sample{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:.8rem}
.images{display:flex;gap:.5rem} .images figure{margin:0;flex:1} .images img{width:100%;height:300px;object-fit:contain;background:#000;border-radius:4px}
figcaption{font-size:.75rem;color:#666;text-align:center}
.meta{font-size:.78rem;color:#444;margin:.4rem 0} .meta code{background:#eef0f3;padding:0 .2rem;border-radius:3px}
.caption{font-size:.9rem;line-height:1.35} dl{font-size:.8rem;margin:.4rem 0} dt{font-weight:600;margin-top:.3rem} dd{margin:0 0 0 .6rem}
.passages{font-size:.72rem;color:#555;margin:.3rem 0 0;padding-left:1.1rem} .split{font-weight:600}
"""

SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.querySelectorAll('.sample img'));
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', String(ok));
  document.body.setAttribute('data-images-failed', String(imgs.length - ok));
  document.getElementById('status').textContent = ok + ' of ' + imgs.length + ' images loaded';
});
"""


def _rank(salt: str, sample_id: str) -> str:
    return hashlib.sha1(f"{salt}\x00{sample_id}".encode()).hexdigest()


def sample_records(df: pl.DataFrame, n: int, salt: str = "gallery") -> pl.DataFrame:
    """Up to `n` records, taking sources in turn (deterministic, hash-ordered within a source)."""
    if df.is_empty() or n <= 0:
        return df.head(0)
    by_source: dict[str, list[str]] = defaultdict(list)
    for ds, sid in sorted(zip(df["dataset"].to_list(), df["sample_id"].to_list(), strict=True), key=lambda t: (t[0], _rank(salt, t[1]))):
        by_source[ds].append(sid)
    chosen: list[str] = []
    queues = [list(v) for _, v in sorted(by_source.items())]
    while len(chosen) < n and any(queues):
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop(0))
    order = {sid: i for i, sid in enumerate(chosen)}
    return df.filter(pl.col("sample_id").is_in(chosen)).with_columns(
        pl.col("sample_id").replace_strict(order, return_dtype=pl.Int64).alias("_order")
    ).sort("_order").drop("_order")


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def sample_html(r: dict, prefix: str = "../") -> str:
    """One record as an <article>."""
    sections = "".join(
        f"<dt>{_e(SECTION_TITLES[c])}</dt><dd class=\"{c}\">{_e(r.get(c))}</dd>" for c in SECTION_COLUMNS
    )
    passages = "".join(f"<li><code>{_e(p)}</code></li>" for p in (r.get("passage_ids") or []))
    roi = "whole image" if r["roi_origin"] == "none" else f"{_e(r.get('roi_label'))} ({_e(r.get('roi_origin'))}, {_e(r.get('position'))})"
    clean = f'<figure><img class="clean" src="{_e(prefix + r["image"])}" alt="clean image" loading="eager"><figcaption>clean image</figcaption></figure>'
    if r["overlay"] == r["image"]:
        figures = clean  # whole-image record: there is no separate overlay
    else:
        figures = f'<figure><img class="overlay" src="{_e(prefix + r["overlay"])}" alt="ROI overlay" loading="eager"><figcaption>ROI overlay</figcaption></figure>' + clean
    bench = f" · <b>benchmark match</b> <code>{_e(r['benchmark_match'])}</code>" if r.get("benchmark_match") else ""
    return (
        f'<article class="sample" id="s-{_e(r["sample_id"])}" data-sample-id="{_e(r["sample_id"])}" data-split="{_e(r["split"])}">'
        f'<div class="images">{figures}</div>'
        f'<p class="meta"><span class="split">{_e(r["split"])}</span> · <code>{_e(r["sample_id"])}</code><br>'
        f"{_e(r['modality'])} · {_e(', '.join(r.get('organs') or []))} · ROI: {roi} · {_e(r['width'])}×{_e(r['height'])} px · "
        f"licence: {_e(r['licence'])}{bench}</p>"
        f'<p class="caption">{_e(r["caption"])}</p>'
        f"<dl>{sections}</dl>"
        f'<div class="cited">Cited passages:<ul class="passages">{passages or "<li>none</li>"}</ul></div>'
        f"</article>"
    )


def render_gallery(sampled: pl.DataFrame, title: str, total_records: int) -> str:
    """The whole page for the sampled records (paths in `sampled` relative to the release root)."""
    articles = "\n".join(sample_html(r) for r in sampled.iter_rows(named=True))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)} — gallery</title><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<style>{STYLE}</style></head>\n"
        f'<body data-samples="{sampled.height}">\n'
        f"<h1>{_e(title)}</h1><p class=\"lead\">{sampled.height} sampled records of {total_records} · "
        f'<span id="status">loading images…</span></p>\n'
        f'<main class="grid">\n{articles}\n</main>\n'
        f"<script>{SCRIPT}</script>\n</body></html>\n"
    )
