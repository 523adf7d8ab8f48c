"""Burned-in PHI end to end, as a user runs it: a catalog of bundled images with invented names,
dates and IDs drawn in (a `mask` source, an `auto` source, DICOM with identifying headers and
`BurnedInAnnotation=YES`), `medtrinity demo` on a real Dagster instance, then `medtrinity release`.

Checked: the pixel verdict of every image; masked images are released and OCR finds none of the
planted strings in them; quarantined images are in no release; and no planted value appears in
any output file (Parquet, PNG text chunks, JSON, tar members, logs, the Dagster event log)."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from phi_corpus import bundled_slices, write_dicom
from PIL import Image

from medtrinity_assets.phi.patterns import normalise
from phi_synthetic import font_names, load_font

REPO = Path(__file__).resolve().parents[1]

# invented identities (unusual enough never to occur in the bundled data or knowledge corpora)
PIXEL_TEXT = {
    "masked/cxr_a.png": ("torchxrayvision_cxr/images/h0001.png@None", [("QUILLON MAREDUDD", (10, 10), 20), ("17/09/1958", (330, 476), 18)]),
    "masked/us_b.png": ("usgra_nerve_ultrasound/images/0020.png@None", [("MRN 7306418", (300, 12), 20), ("Yseult Brannagh", (150, 240), 24)]),
    "masked/derm_c.png": ("ham10000_dermoscopy/images/ISIC_0027001.jpg@None", [("1961-03-28", (12, 415), 22), ("16:42:09", (480, 12), 20)]),
    "auto/ct_d.png": ("sam_med2d_demo/images/amos_0006_90.png@None", [("TAVITA FONOTI", (12, 12), 20), ("ACC 4471902", (300, 480), 18)]),
    "auto/fundus_e.png": ("chase_db1_fundus/images/Image_02R.jpg@None", [("03-NOV-1947", (20, 20), 30)]),
}
HEADER = {"PatientName": "Kilbrannan^Orsolya", "PatientID": "QZ-730641", "InstitutionName": "Glenmorrow Valley Infirmary", "PatientBirthDate": "19580917"}
# distinct base images: near-duplicate images are described once per shard
DICOM_TEXT = {
    "dicom/flagged.dcm": ("torchxrayvision_cxr/images/00027426_000.png@None", "KILBRANNAN ORSOLYA", "YES"),
    "dicom/unflagged.dcm": ("torchxrayvision_cxr/images/00000001_000.png@None", "Orsolya Kilbrannan", None),
    "dicom/clean.dcm": ("torchxrayvision_cxr/images/tb0007.png@None", None, None),
}
#: every planted value, lower case, as it could appear in a text file
PLANTED = {
    "quillon", "maredudd", "17/09/1958", "7306418", "yseult", "brannagh", "1961-03-28", "16:42:09",
    "tavita", "fonoti", "4471902", "03-nov-1947", "kilbrannan", "orsolya", "qz-730641", "glenmorrow", "19580917", "1958-09-17",
}


def _draw(pixels: np.ndarray, texts) -> np.ndarray:
    from PIL import ImageDraw

    img = Image.fromarray(pixels)
    draw = ImageDraw.Draw(img)
    fill = (255, 255, 0) if img.mode == "RGB" else 255
    for i, (text, xy, size) in enumerate(texts):
        draw.text(xy, text, font=load_font(font_names()[i % len(font_names())], size), fill=fill)
    return np.asarray(img).copy()


def _write_sources(root: Path) -> None:
    slices = dict(bundled_slices())
    for rel, (base, texts) in PIXEL_TEXT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_draw(slices[base], texts)).save(root / rel)
    Image.fromarray(slices["torchxrayvision_cxr/images/tb0005.png@None"]).save(root / "masked" / "clean_f.png")
    (root / "dicom").mkdir()
    for rel, (base, text, flag) in DICOM_TEXT.items():
        pixels = _draw(slices[base], [(text, (12, 12), 22)]) if text else slices[base]
        write_dicom(root / rel, pixels, patient_name=HEADER["PatientName"], patient_id=HEADER["PatientID"], burned_in=flag,
                    modality="DX", institution=HEADER["InstitutionName"], birth_date=HEADER["PatientBirthDate"])


def _source(name: str, folder: str, pattern: str, modality: str, organs: list[str], phi: dict | None) -> dict:
    entry = {"name": name, "title": name, "modality": modality, "organs": organs, "root": f"sources/{folder}",
             "layout": {"adapter": "files", "images": pattern}, "licence": "CC0-1.0", "redistributable": True}
    return {**entry, "phi": phi} if phi else entry


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("phi_e2e")
    _write_sources(tmp / "sources")
    catalog = {"shard_count": 1, "sources": [
        _source("planted_mask", "masked", "*.png", "X-ray", ["chest"], {"pixels": "mask"}),
        _source("planted_auto", "auto", "*.png", "CT", ["abdomen"], None),
        _source("planted_dicom", "dicom", "*.dcm", "auto", ["chest"], None),
    ]}
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(catalog, sort_keys=False))
    (tmp / "releases.yaml").write_text(yaml.safe_dump({"releases": [{"name": "phi_check", "sources": "all", "splits": {"train": 1.0, "validation": 0.0, "test": 0.0}}]}))
    home, dagster_home = tmp / "home", tmp / "dagster_home"
    env = {**os.environ, "MEDTRINITY_CATALOG": str(tmp / "catalog.yaml"), "MEDTRINITY_RELEASES": str(tmp / "releases.yaml"),
           "MEDTRINITY_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    logs = []
    for args in (["demo", "--skip-knowledge", "--no-release"], ["release", "--name", "phi_check"]):
        proc = subprocess.run([sys.executable, "-m", "medtrinity_assets.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        logs.append(proc.stdout + proc.stderr)
    return home, dagster_home, "\n".join(logs)


def _manifest(home: Path, asset: str) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in sorted((home / "dataset" / "manifests" / asset).rglob("*.parquet"))], how="diagonal_relaxed")


def test_pixel_verdicts_per_image(run):
    home, _, _ = run
    images = {r["image_id"]: r for r in _manifest(home, "images").iter_rows(named=True)}
    action = {k: v["phi_action"] for k, v in images.items()}
    assert action == {
        "planted_mask/cxr_a.png": "masked", "planted_mask/us_b.png": "masked", "planted_mask/derm_c.png": "masked", "planted_mask/clean_f.png": "no_text",
        "planted_auto/ct_d.png": "quarantined", "planted_auto/fundus_e.png": "quarantined",
        "planted_dicom/flagged.dcm": "quarantined", "planted_dicom/unflagged.dcm": "quarantined", "planted_dicom/clean.dcm": "no_text",
    }, action
    assert {"phi_pixels:name", "phi_pixels:id"} <= set(images["planted_auto/ct_d.png"]["phi_reasons"])
    assert "phi_pixels:date" in images["planted_auto/fundus_e.png"]["phi_reasons"]
    assert {"phi_pixels:burned_in_annotation", "phi_pixels:header_name"} <= set(images["planted_dicom/flagged.dcm"]["phi_reasons"])
    assert "phi_pixels:header_name" in images["planted_dicom/unflagged.dcm"]["phi_reasons"]
    assert all(images[f"planted_mask/{k}.png"]["phi_text_regions"] >= 2 for k in ("cxr_a", "us_b", "derm_c"))
    assert json.loads(images["planted_mask/cxr_a.png"]["phi_policy"])["pixels"] == "mask"
    assert images["planted_dicom/clean.dcm"]["phi_header_hashes"]  # header identities kept only as hashes


def test_quarantined_records_stay_flagged_and_out_of_the_release(run):
    home, _, _ = run
    triplets = _manifest(home, "triplets")
    quarantined = set(triplets.filter(pl.col("quarantined"))["image_id"].to_list())
    assert quarantined == {"planted_auto/ct_d.png", "planted_auto/fundus_e.png", "planted_dicom/flagged.dcm", "planted_dicom/unflagged.dcm"}
    for reasons in triplets["quarantine_reasons"].to_list():
        assert all(r.startswith(("phi_pixels:", "phi_text:")) for r in reasons), reasons
    release = home / "dataset" / "releases" / "phi_check"
    released = pl.concat([pl.read_parquet(p) for p in (release / "data" / "full").glob("*.parquet")])
    ids = set(released["image_id"].to_list()) if "image_id" in released.columns else set()
    assert ids == {"planted_mask/cxr_a.png", "planted_mask/us_b.png", "planted_mask/derm_c.png", "planted_mask/clean_f.png", "planted_dicom/clean.dcm"}, ids
    names = {p.stem for p in (release).rglob("*.png")}
    assert not any(n.startswith(("ct_d", "fundus_e", "flagged", "unflagged")) for n in names), names


def test_ocr_of_released_images_finds_no_planted_string(run):
    from medtrinity_assets.phi.ocr import get_engine

    home, _, _ = run
    engine = get_engine()
    pngs = sorted((home / "dataset" / "releases" / "phi_check").rglob("*.png"))
    assert len(pngs) >= 5
    tokens = {t for _, texts in PIXEL_TEXT.values() for text, _, _ in texts for t in normalise(text).split() if len(t) >= 3 and t not in {"mrn", "acc"}}
    for png in pngs:
        read = " ".join(normalise(r.text) for r in engine.read(np.asarray(Image.open(png))))
        squashed = read.replace(" ", "")
        assert not any(t in squashed for t in tokens), (png.name, [t for t in tokens if t in squashed])


def _texts(path: Path):
    """Every piece of text a file holds, decoded the way a reader would see it."""
    data = path.read_bytes()
    yield data.decode("latin-1")
    if path.suffix == ".parquet":
        df = pl.read_parquet(path)
        # release Parquet embeds images as {bytes, path}: the bytes are the released PNG files (same
        # SHA-256, checked by the release), scanned below as .png; keep the path for the text scan
        embedded = [c for c, t in df.schema.items() if isinstance(t, pl.Struct) and {f.name for f in t.fields} == {"bytes", "path"}]
        yield df.with_columns(pl.col(c).struct.field("path").alias(c) for c in embedded).write_ndjson()
    elif path.suffix == ".png":
        yield json.dumps({str(k): str(v) for k, v in Image.open(path).info.items()})
    elif path.suffix == ".tar":
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    yield tar.extractfile(member).read().decode("latin-1")
    elif data[:16] == b"SQLite format 3\x00":
        with sqlite3.connect(path) as db:
            for (table,) in db.execute("select name from sqlite_master where type='table'"):
                for row in db.execute(f'select * from "{table}"'):
                    yield " ".join(str(v) for v in row)


def test_no_planted_value_in_any_output_file(run):
    home, dagster_home, logs = run
    files = [p for root in (home, dagster_home) for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files) and any("history" in str(p) or p.suffix == ".db" for p in files)
    hits = []
    for path in files:
        for text in _texts(path):
            low = text.lower()
            hits += [(str(path.relative_to(path.parents[len(path.parents) - 1])), v) for v in PLANTED if v in low]
    hits += [("cli output", v) for v in PLANTED if v in logs.lower()]
    assert not hits, hits[:20]


def test_event_log_previews_show_no_planted_text(run):
    """Preview thumbnails in materialisation metadata never show a quarantined image."""
    import base64
    import re

    from medtrinity_assets.phi.ocr import get_engine

    _, dagster_home, _ = run
    engine = get_engine()
    previews = []
    for db in dagster_home.rglob("*.db"):
        for text in list(_texts(db))[1:]:  # the rows, not the raw file bytes
            previews += re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
    assert previews
    tokens = {t for _, texts in PIXEL_TEXT.values() for text, _, _ in texts for t in normalise(text).split() if len(t) >= 4} | {"kilbrannan", "orsolya"}
    for b64 in set(previews):
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))
        read = "".join(normalise(r.text).replace(" ", "") for r in engine.read(img))
        assert not any(t in read for t in tokens)
