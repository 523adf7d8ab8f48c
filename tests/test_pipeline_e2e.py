"""The whole asset graph, materialised in-process for every demo source partition on a real
Dagster instance (SQLite on disk), through real chromadb, the offline embedder and the
grounded composer. One session-scoped run feeds the assertions below."""

from __future__ import annotations

import re

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import AssetCheckSeverity, DagsterInstance

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "data" / "sources"


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    from helpers import materialize_all
    from medtrinity_assets.defs.resources import storage_from_settings

    instance = DagsterInstance.local_temp(tempdir=str(tmp_path_factory.mktemp("dagster_home")))
    outcomes = materialize_all(instance, echo=False)
    storage = storage_from_settings()
    yield instance, outcomes, storage
    instance.dispose()


def _manifest(storage, asset: str) -> pl.DataFrame:
    frames = [storage.read_parquet(k) for k in storage.list_keys(f"manifests/{asset}/")]
    return pl.concat(frames, how="vertical_relaxed")


def test_every_run_succeeds_and_every_check_passes(demo):
    instance, outcomes, _ = demo
    failed = [o.label for o in outcomes if not o.success]
    assert not failed, failed
    failing_checks, warnings = [], []
    for o in outcomes:
        for ev in o.result.get_asset_check_evaluations():
            if not ev.passed:
                (warnings if ev.severity == AssetCheckSeverity.WARN else failing_checks).append((o.label, ev.check_name, ev.metadata))
    assert not failing_checks, failing_checks
    # the one bundled file that cannot be used (a pydicom test file) is a rejects row, and source_rejects warns about it
    assert [(label, name, md["sources_with_rejects"].value) for label, name, md in warnings] == [
        ("reports_job", "sources_without_rejects", {"pydicom_dicom": 1})
    ], warnings
    # the runs are recorded on the instance, as the UI shows them
    assert len(instance.get_runs()) == len(outcomes)


def test_triplets_for_every_demo_source(demo):
    _, _, storage = demo
    t = _manifest(storage, "triplets")
    per_source = dict(t.group_by("dataset").len().iter_rows())
    for name in ["sam_med2d_demo", "totalsegmentator_example", "torchxrayvision_cxr", "stardist_dsb2018", "pydicom_dicom", "niivue_nifti"]:
        assert per_source.get(name, 0) > 0, (name, per_source)
    assert t.filter(pl.col("quarantined")).height == 0, t.filter(pl.col("quarantined")).select("triplet_id", "quarantine_reasons")
    assert t["triplet_id"].is_unique().all()
    modalities = set(t["modality"].to_list())
    assert {"CT", "MRI", "X-ray", "Ultrasound", "Nuclear medicine", "Histopathology", "Fluorescence microscopy"} <= modalities
    # provenance on every record
    for col in ["source_file", "roi_origin", "prompt_version", "prompt_hash", "caption_backend", "generation_settings", "ingest_policy"]:
        assert t[col].null_count() == 0, col
    gt = t.filter(pl.col("roi_origin") == "ground_truth")
    # knowledge under the use policy: mapped structures get their anatomy passage, unmapped labels ("nucleus") none
    assert gt.height > 0 and (gt["passage_ids"].list.len() > 0).any()
    nuclei = gt.filter(pl.col("dataset") == "stardist_dsb2018")
    assert nuclei.height > 0 and (nuclei["passage_ids"].list.len() == 0).all()
    # images without any ROI are described whole, never dropped
    whole = t.filter(pl.col("roi_origin") == "none")
    assert {"pydicom_dicom", "niivue_nifti"} <= set(whole["dataset"].to_list())
    assert "images/amos_0507_31.png" in {r.split("/", 1)[1].split("#")[0] for r in whole["triplet_id"].to_list()}


def _rois(storage, dataset: str) -> pl.DataFrame:
    return _manifest(storage, "roi_masks").filter((pl.col("dataset") == dataset) & (pl.col("origin") == "ground_truth"))


def test_sam_med2d_rois_match_ground_truth_boxes(demo):
    _, _, storage = demo
    rois = _rois(storage, "sam_med2d_demo")
    expected = [json.loads(l) for l in (SOURCES / "sam_med2d_demo" / "manifest.jsonl").read_text().splitlines()]
    got = {
        (r["image_id"].split("/", 1)[1], r["label"], r["instance"]): (r["bbox_x0"], r["bbox_y0"], r["bbox_x1"], r["bbox_y1"])
        for r in rois.iter_rows(named=True)
    }
    matched = 0
    for e in expected:
        item_id = Path(e["image"]).as_posix()  # item ids keep the file extension
        key = (item_id, e["label"].replace("_", " "), e["instance"])
        boxes = [v for k, v in got.items() if k[0] == key[0] and k[1] == key[1]]
        assert tuple(e["bbox_xyxy"]) in boxes, (key, boxes)
        matched += 1
    assert matched == len(expected) == 30


def test_stardist_instance_rois_match_manifest(demo):
    """The catalog groups the image's nuclei (`rois.instances: group`): one ROI whose count, area and
    box are those of the manifest's instances of at least min_area_px."""
    _, _, storage = demo
    rois = _rois(storage, "stardist_dsb2018").filter(pl.col("label") == "nucleus")
    expected = [json.loads(l) for l in (SOURCES / "stardist_dsb2018" / "manifest.jsonl").read_text().splitlines()]
    big = [e for e in expected if e["area_px"] >= 16]
    assert rois.height == 1
    row = rois.row(0, named=True)
    assert row["m_instance_count"] == row["m_label_count"] == len(big)
    assert row["area_px"] == sum(e["area_px"] for e in big)
    box = [min(e["bbox_xyxy"][0] for e in big), min(e["bbox_xyxy"][1] for e in big), max(e["bbox_xyxy"][2] for e in big), max(e["bbox_xyxy"][3] for e in big)]
    assert [row["bbox_x0"], row["bbox_y0"], row["bbox_x1"], row["bbox_y1"]] == box


def test_roi_masks_equal_stored_ground_truth_layers(demo):
    """Every GT ROI's RLE mask is exactly a connected piece of its stored ground-truth layer."""
    from medtrinity_assets.rois import rle_decode
    from medtrinity_assets.stages.common import load_mask_layers

    _, _, storage = demo
    images = _manifest(storage, "images").filter(pl.col("gt_masks_uri").is_not_null())
    rois = _manifest(storage, "roi_masks").filter(pl.col("origin") == "ground_truth")
    checked = 0
    for img in images.head(40).iter_rows(named=True):
        layers = load_mask_layers(storage.read_uri(img["gt_masks_uri"]))
        union = {}
        for layer in layers:
            union[layer.label] = union.get(layer.label, np.zeros_like(layer.mask)) | layer.mask
        for r in rois.filter(pl.col("image_id") == img["image_id"]).iter_rows(named=True):
            m = rle_decode(r["rle"])
            assert m.shape == (img["height"], img["width"])
            assert not (m & ~union[r["label"]]).any(), r["roi_id"]  # no pixel outside the GT layer
            ys, xs = np.nonzero(m)
            assert (xs.min(), ys.min(), xs.max(), ys.max()) == (r["bbox_x0"], r["bbox_y0"], r["bbox_x1"], r["bbox_y1"])
            checked += 1
    assert checked > 20


def test_rerunning_a_partition_gives_the_same_output(demo):
    from medtrinity_assets.definitions import defs
    from medtrinity_assets.partitions import dataset_shard_key

    instance, _, storage = demo
    shard = next(k.rsplit("/", 1)[1][:-8] for k in storage.list_keys("manifests/triplets/sam_med2d_demo/") if storage.read_parquet(k).height)
    key = dataset_shard_key("sam_med2d_demo", shard)
    before = storage.read_parquet(f"manifests/triplets/sam_med2d_demo/{shard}.parquet")
    files_before = storage.list_keys("images/sam_med2d_demo/")
    result = defs.resolve_job_def("dataset_shard_job").execute_in_process(instance=instance, partition_key=key)
    assert result.success
    after = storage.read_parquet(f"manifests/triplets/sam_med2d_demo/{shard}.parquet")
    assert before.height > 0 and after.equals(before)
    assert storage.list_keys("images/sam_med2d_demo/") == files_before


def test_materialisation_metadata_for_the_ui(demo):
    from dagster import AssetKey

    instance, _, _ = demo
    ev = instance.get_latest_materialization_event(AssetKey("roi_masks"))
    assert ev is not None
    md = ev.asset_materialization.metadata
    for k in ["rois", "rejects", "images_per_s", "by_origin"]:
        assert k in md, k
    latest = {}
    for key in ["images", "roi_masks", "triplets", "caption_batches"]:
        records = instance.fetch_materializations(AssetKey(key), limit=200).records
        latest[key] = [r.asset_materialization.metadata for r in records]
    assert any("preview" in m and "data:image/png;base64," in m["preview"].value for m in latest["roi_masks"])
    assert any("sample_caption" in m for m in latest["triplets"])
    assert any(m["captions"].value > 0 for m in latest["caption_batches"])


def test_no_phi_from_dicom_headers_in_outputs(demo):
    """Header values that identify people or institutions never reach any manifest."""
    import pydicom

    _, _, storage = demo
    phi_values = set()
    for f in (SOURCES / "pydicom_dicom").glob("*.dcm"):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        for tag in ["PatientName", "PatientID", "InstitutionName", "ReferringPhysicianName", "PatientBirthDate", "AccessionNumber", "StudyDate"]:
            v = str(ds.get(tag, "") or "").strip()
            if len(v) >= 4:
                phi_values.add(v)
    assert phi_values
    digests = ["image_sha256", "image_phash", "image_signature", "patient_hash", "prompt_hash", "phi_header_hashes"]  # hex: any 4 digits occur
    def text_of(df: pl.DataFrame) -> str:
        # computed floats (scores, seconds, measurements) can spell any digit run ("0.0327990001"): not header text
        floats = [c for c, t in df.schema.items() if t.is_float() or (isinstance(t, pl.List) and t.inner.is_float())]
        # passages are public corpus text (a MedQuAD answer may mention "99000 cases"), never header values
        corpus_text = ["passage_texts", "passage_titles"]
        return df.drop(digests + floats + corpus_text, strict=False).write_ndjson()

    texts = [text_of(storage.read_parquet(k)) for k in storage.list_keys("manifests/") if "pydicom_dicom" in k]
    assert texts
    for v in phi_values:
        # as a token: a 5-digit ID also occurs inside hex digests and run ids, which carry no PHI
        token = re.compile(r"(?<![0-9A-Za-z])" + re.escape(v) + r"(?![0-9A-Za-z])")
        hits = [t[max(0, m.start() - 160) : m.end() + 40] for t in texts for m in token.finditer(t)]
        assert not hits, (v, hits[:2])
