"""A real release: the pipeline runs for two demo sources on a Dagster instance, then `release_job`
(dataset_release + vqa_pairs) builds the demo release with a planted benchmark duplicate. Every
format is read back independently (Parquet through polars and `datasets`, LLaVA JSON, WebDataset
tars, checksums), splits are checked against patients and volumes, the card and figure are
inspected, and the gallery is rendered in headless Chromium."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from dagster import AssetKey, DagsterInstance
from PIL import Image

from medtrinity_assets.export.schema import RELEASE_SCHEMA_VERSION

SOURCES = ["sam_med2d_demo", "pydicom_dicom"]
PLANTED_IMAGE = "sam_med2d_demo/images/amos_0507_31.png"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from helpers import materialize_all, run_job
    from medtrinity_assets.definitions import defs
    from medtrinity_assets.defs.resources import storage_from_settings

    instance = DagsterInstance.local_temp(tempdir=str(tmp_path_factory.mktemp("export_dagster_home")))
    # the anatomy corpus, so that records cite knowledge passages (structures get passages about themselves)
    outcomes = [run_job(defs, "knowledge_index_job", instance, "anatomy", "knowledge_index[anatomy]")]
    outcomes += materialize_all(instance, sources=SOURCES, knowledge=False, echo=False)
    assert all(o.success for o in outcomes), [o.label for o in outcomes if not o.success]
    yield instance, storage_from_settings()
    instance.dispose()


def _triplets(storage) -> pl.DataFrame:
    frames = [storage.read_parquet(k) for k in storage.list_keys("manifests/triplets/") if k.endswith(".parquet")]
    return pl.concat(frames, how="vertical_relaxed")


@pytest.fixture(scope="module")
def benchmark_dir(pipeline, tmp_path_factory):
    """A 'benchmark' folder: a re-encoded, resized copy of one demo image among unrelated images."""
    _, storage = pipeline
    planted = _triplets(storage).filter(pl.col("image_id") == PLANTED_IMAGE)["image_uri"][0]
    folder = tmp_path_factory.mktemp("benchmark") / "vqa_rad_like"
    (folder / "test").mkdir(parents=True)
    img = Image.open(io.BytesIO(storage.read_uri(planted))).convert("RGB")
    img = img.resize((int(img.width * 0.7), int(img.height * 0.7)), Image.BICUBIC)
    img.save(folder / "test" / "synpic_planted.jpg", quality=80)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (128, 128), dtype=np.uint8)).save(folder / "test" / "noise.png")
    Image.fromarray(np.tile(np.linspace(0, 255, 200, dtype=np.uint8), (150, 1))).save(folder / "gradient.png")
    return folder


@pytest.fixture(scope="module")
def release(pipeline, benchmark_dir):
    from helpers import materialize_release

    instance, storage = pipeline
    outcome = materialize_release(instance, "demo", {"planted": str(benchmark_dir)})
    root = Path(storage.uri("releases/demo"))
    return outcome, root, storage


@pytest.fixture(scope="module")
def expected(release):
    """What the release must hold, from the triplet manifests and the catalog (not from the release)."""
    from medtrinity_assets.defs.context import CATALOG

    _, _, storage = release
    t = _triplets(storage)
    redistributable = [s.name for s in CATALOG.sources if s.redistributable]
    eligible = t.filter(pl.col("dataset").is_in(redistributable) & ~pl.col("quarantined"))
    return eligible.filter(pl.col("image_id") != PLANTED_IMAGE), eligible.filter(pl.col("image_id") == PLANTED_IMAGE), t


def _parquet(root: Path, view: str = "full") -> pl.DataFrame:
    """Records of one Parquet view, with the embedded images' paths in `image` / `overlay`."""
    df = pl.concat([pl.read_parquet(p) for p in sorted((root / "data" / view).glob("*.parquet"))])
    return df.with_columns(pl.col(c).struct.field("path").alias(c) for c in ("image", "overlay") if c in df.columns)


def test_release_job_succeeds_with_passing_checks_and_ui_metadata(release, expected):
    outcome, root, _ = release
    assert outcome.success
    checks = {ev.check_name: ev.passed for ev in outcome.result.get_asset_check_evaluations()}
    assert checks == {"release_reads_back": True, "splits_disjoint_by_group": True, "no_benchmark_duplicates": True, "vqa_pairs_consistent": True}
    mat = [e for e in outcome.result.get_asset_materialization_events() if e.asset_key == AssetKey("dataset_release")][0]
    md = mat.materialization.metadata
    assert md["records"].value == expected[0].height
    assert "data:image/png;base64," in md["statistics_figure"].value
    assert "## Splits" in md["card"].value
    assert md["decontamination"].value["benchmarks"]["planted"]["matched_release_images"] == 1
    assert root.is_dir() and (root / "README.md").is_file()


def test_every_format_reads_back_with_matching_counts_and_checksums(release, expected, tmp_path):
    import datasets

    _, root, _ = release
    kept, _, _ = expected
    # checksums.sha256 covers every file outside vqa/ (which has its own), and every file matches
    listed = dict(reversed(line.split("  ", 1)) for line in (root / "checksums.sha256").read_text().splitlines())
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    unlisted = on_disk - set(listed) - {"checksums.sha256"}
    assert unlisted and all(p.startswith("vqa/") for p in unlisted)
    assert all(_sha(root / rel) == digest for rel, digest in listed.items())
    vqa_listed = dict(reversed(line.split("  ", 1)) for line in (root / "vqa" / "checksums.sha256").read_text().splitlines())
    assert all(_sha(root / "vqa" / rel) == digest for rel, digest in vqa_listed.items())

    # Parquet (polars): exactly the eligible records, images in the release, hashes right
    df = _parquet(root)
    assert sorted(df["sample_id"].to_list()) == sorted(kept["triplet_id"].to_list())
    assert df["release_schema_version"].unique().to_list() == [RELEASE_SCHEMA_VERSION]
    for path, digest in df.select("image", "image_sha256").unique().iter_rows():
        assert _sha(root / path) == digest
    for path, digest in df.select("overlay", "overlay_sha256").unique().iter_rows():
        assert _sha(root / path) == digest
    rois = df.filter(pl.col("roi_origin") != "none")
    assert rois.height and rois["bbox"].list.len().eq(4).all() and rois["mask_rle"].is_not_null().all()
    assert (df["passage_ids"].list.len() > 0).any()

    # the same files through Hugging Face datasets, offline, by file and by the card's configs
    split_files = {p.stem: str(p) for p in sorted((root / "data" / "full").glob("*.parquet"))}
    ds = datasets.load_dataset("parquet", data_files=split_files, cache_dir=str(tmp_path / "hf"))
    assert {s: ds[s].num_rows for s in ds} == dict(df.group_by("split").len().iter_rows())
    assert set(ds["train"].column_names) >= {"image", "overlay", "caption", "section_roi", "bbox", "mask_rle", "split"}
    by_card = datasets.load_dataset(str(root), cache_dir=str(tmp_path / "hf2"))
    assert {s: by_card[s].num_rows for s in by_card} == {s: ds[s].num_rows for s in ds}

    # LLaVA conversations: one per record, image inside the release, response = caption
    captions = dict(df.select("sample_id", "caption").iter_rows())
    llava = [e for p in sorted((root / "llava").glob("*.json")) for e in json.loads(p.read_text())]
    assert sorted(e["id"] for e in llava) == sorted(captions)
    for e in llava:
        assert (root / e["image"]).is_file()
        human, gpt = e["conversations"]
        assert human["from"] == "human" and human["value"].startswith("<image>\n") and gpt["value"] == captions[e["id"]]

    # WebDataset: index and SHA256SUMS agree with the bytes; one sample per image holding all its
    # records; png + txt in every sample; every record once, equal to Parquet
    index = json.loads((root / "webdataset" / "index.json").read_text())
    sums = dict(reversed(line.split("  ", 1)) for line in (root / "webdataset" / "SHA256SUMS").read_text().splitlines())
    records = {r["sample_id"]: r for r in df.iter_rows(named=True)}
    seen = set()
    for shard in index["shards"]:
        path = root / "webdataset" / shard["file"]
        assert _sha(path) == shard["sha256"] == sums[shard["file"]]
        with tarfile.open(path) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        keys = {n.split(".", 1)[0] for n in members}
        assert len(keys) == shard["n_samples"]
        for key in keys:
            doc = json.loads(members[f"{key}.json"])
            recs = doc["records"]
            assert {r["image_id"] for r in recs} == {doc["image_id"]}
            want_captions = [" ".join(records[r["sample_id"]]["caption"].split()) for r in recs]
            assert members[f"{key}.txt"].decode() == "\n".join(want_captions)
            assert hashlib.sha256(members[f"{key}.png"]).hexdigest() == records[recs[0]["sample_id"]]["image_sha256"]
            with Image.open(io.BytesIO(members[f"{key}.png"])) as im:
                im.load()
                assert im.size == (recs[0]["width"], recs[0]["height"])
            for i, rec in enumerate(recs):
                want = records[rec["sample_id"]]
                assert rec["split"] == shard["split"] == want["split"] and rec["caption"] == want["caption"]
                assert members[f"{key}.{i:03d}.txt"].decode() == want_captions[i]
                if want["overlay"] != want["image"]:
                    assert hashlib.sha256(members[f"{key}.{i:03d}.overlay.png"]).hexdigest() == want["overlay_sha256"]
                else:
                    assert f"{key}.{i:03d}.overlay.png" not in members
                seen.add(rec["sample_id"])
        assert sum(len(json.loads(members[f"{k}.json"])["records"]) for k in keys) == shard["n_records"]
    assert seen == set(records)
    # the clean image is stored once per image, not once per record
    assert sum(s["n_samples"] for s in index["shards"]) == df["image_id"].n_unique() < df.height


def test_hf_load_dataset_gives_pil_images_from_any_working_directory(release, tmp_path, monkeypatch):
    """Images travel inside the Parquet files as the `Image` feature: `load_dataset` run from an
    unrelated folder decodes `image` and `overlay` to PIL images, in both views."""
    import datasets

    _, root, _ = release
    full = _parquet(root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    files = {p.stem: str(p) for p in sorted((root / "data" / "full").glob("*.parquet"))}
    assert set(files) <= {"train", "validation", "test"} and "train" in files
    ds = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "hf"))
    assert isinstance(ds["train"].features["image"], datasets.Image) and isinstance(ds["train"].features["overlay"], datasets.Image)
    by_id = {r["sample_id"]: r for r in full.iter_rows(named=True)}
    for split in ds:
        for row in ds[split].select(range(min(5, ds[split].num_rows))):
            want = by_id[row["sample_id"]]
            assert isinstance(row["image"], Image.Image) and row["image"].size == (want["width"], want["height"])
            assert isinstance(row["overlay"], Image.Image) and row["overlay"].size == row["image"].size
            assert np.array_equal(np.asarray(row["image"]), np.asarray(Image.open(root / want["image"])))
    roi = next(r for r in ds["train"] if r["roi_origin"] != "none")
    assert not np.array_equal(np.asarray(roi["overlay"].convert("RGB")), np.asarray(roi["image"].convert("RGB")))  # contour drawn

    # minimal MedTrinity-compatible view: image, id, caption, source, same records
    mini_files = {p.stem: str(p) for p in sorted((root / "data" / "minimal").glob("*.parquet"))}
    assert set(mini_files) == set(files)
    mini = datasets.load_dataset("parquet", data_files=mini_files, cache_dir=str(tmp_path / "hf_min"))
    assert mini["train"].column_names == ["image", "id", "caption", "source"]
    assert isinstance(mini["train"].features["image"], datasets.Image)
    first = mini["train"][0]
    assert isinstance(first["image"], Image.Image)
    want = by_id[first["id"]]
    assert first["caption"] == want["caption"] and first["source"] == want["dataset"]
    assert sum(mini[s].num_rows for s in mini) == full.height

    # and through the card's configs, from this other folder too
    by_card = datasets.load_dataset(str(root), "minimal", cache_dir=str(tmp_path / "hf_card"))
    assert isinstance(by_card["train"][0]["image"], Image.Image)


def test_release_shards_read_with_the_webdataset_library(release):
    """`to_tuple("png", "txt")` on the release's own shards: clean image and its captions."""
    webdataset = pytest.importorskip("webdataset")
    _, root, _ = release
    df = _parquet(root)
    urls = [str(p) for p in sorted((root / "webdataset").glob("*.tar"))]
    pairs = list(webdataset.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("png", "txt", "json"))
    assert len(pairs) == df["image_id"].n_unique()
    for img, txt, doc in pairs:
        want = df.filter(pl.col("image_id") == doc["image_id"])
        assert isinstance(img, Image.Image) and img.size == (want["width"][0], want["height"][0])
        assert set(txt.split("\n")) == {" ".join(c.split()) for c in want["caption"]}


def test_release_files_are_world_readable(release):
    _, root, _ = release
    paths = [root, *root.rglob("*")]
    assert len(paths) > 20
    modes = {p.relative_to(root).as_posix(): p.stat().st_mode & 0o777 for p in paths}
    wrong = {p: oct(m) for p, m in modes.items() if m != (0o755 if (root / p).is_dir() else 0o644)}
    assert not wrong, wrong
    assert modes["vqa/checksums.sha256"] == 0o644 and modes["data/full"] == 0o755


def test_card_metadata_is_complete_for_the_hub(release):
    import datasets
    from datasets.info import DatasetInfosDict
    from huggingface_hub import DatasetCardData

    _, root, _ = release
    card = (root / "README.md").read_text()
    assert card.startswith("---\n")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "other" and front["license_name"] and front["license_link"] == "LICENSE.md"
    assert (root / "LICENSE.md").is_file() and "sam_med2d_demo" in (root / "LICENSE.md").read_text()
    assert front["language"] == ["en"]
    n = _parquet(root).height
    assert front["size_categories"] == ["n<1K" if n < 1000 else "1K<n<10K"]
    assert {"image-to-text", "visual-question-answering"} <= set(front["task_categories"])
    configs = {c["config_name"]: c for c in front["configs"]}
    assert set(configs) == {"full", "minimal"} and configs["full"].get("default") is True
    for name, c in configs.items():
        for f in c["data_files"]:
            assert (root / f["path"]).is_file() and f["path"].startswith(f"data/{name}/") and f["split"] in {"train", "validation", "test"}
    info = {i["config_name"]: i for i in front["dataset_info"]}
    assert {f["name"]: f.get("dtype") for f in info["minimal"]["features"]} == {"image": "image", "id": "string", "caption": "string", "source": "string"}
    full_features = {f["name"]: f for f in info["full"]["features"]}
    assert full_features["image"]["dtype"] == full_features["overlay"]["dtype"] == "image"
    assert set(full_features) == set(pl.read_parquet_schema(next((root / "data" / "full").glob("*.parquet"))))
    assert sum(s["num_examples"] for s in info["full"]["splits"]) == n
    for name, c in configs.items():
        assert info[name]["download_size"] == sum((root / f["path"]).stat().st_size for f in c["data_files"])
        # `datasets` ignores a split list lacking name / num_bytes / num_examples
        assert all(set(sp) == {"name", "num_bytes", "num_examples"} and sp["num_bytes"] > 0 for sp in info[name]["splits"])
        assert info[name]["dataset_size"] == sum(sp["num_bytes"] for sp in info[name]["splits"])
    # the Hub's own parsers accept the metadata: features and split info as `datasets` reads them
    card_data = DatasetCardData(**front)
    assert card_data.license == "other"
    infos = DatasetInfosDict.from_dataset_card_data(card_data)
    assert isinstance(infos["full"].features["image"], datasets.Image)
    assert isinstance(infos["full"].features["organs"], datasets.List)
    assert infos["minimal"].splits["train"].num_examples == pl.read_parquet(root / "data" / "minimal" / "train.parquet").height
    assert infos["full"].splits["train"].num_bytes == next(sp["num_bytes"] for sp in info["full"]["splits"] if sp["name"] == "train")


def test_split_names_are_hugging_face_names(release):
    _, root, _ = release
    manifest = json.loads((root / "release.json").read_text())
    names = set(manifest["counts"]["per_split"]) | set(manifest["files"]["parquet"]) | set(manifest["files"]["parquet_minimal"])
    assert "val" not in names and names <= {"train", "validation", "test"}
    assert set(_parquet(root)["split"].unique()) <= {"train", "validation", "test"}
    index = json.loads((root / "webdataset" / "index.json").read_text())
    assert {s["split"] for s in index["shards"]} <= {"train", "validation", "test"}
    assert manifest["config"]["splits"] == {"train": 0.8, "validation": 0.1, "test": 0.1}


def test_no_patient_volume_or_item_in_two_splits(release, expected):
    _, root, _ = release
    _, _, triplets = expected
    df = _parquet(root).join(triplets.select(pl.col("triplet_id").alias("sample_id"), "patient_hash"), on="sample_id")
    assert df.group_by("split_group").agg(pl.col("split").n_unique())["split"].max() == 1
    with_patient = df.filter(pl.col("patient_hash") != "")
    assert with_patient.height > 0  # the DICOM files carry patients
    assert with_patient.group_by("patient_hash").agg(pl.col("split").n_unique())["split"].max() == 1
    assert df.group_by("source_file").agg(pl.col("split").n_unique())["split"].max() == 1
    sam = df.filter(pl.col("dataset") == "sam_med2d_demo").with_columns(pl.col("source_file").str.extract(r"images/(.+)_\d+\.png").alias("volume"))
    assert sam["volume"].null_count() == 0
    assert sam.group_by("volume").agg(pl.col("split").n_unique())["split"].max() == 1
    assert "patient_hash" not in _parquet(root).columns  # only the salted split group is exported


def test_planted_benchmark_duplicate_is_removed_and_reported(release, expected):
    _, root, storage = release
    _, planted, _ = expected
    assert planted.height >= 1
    df = _parquet(root)
    assert PLANTED_IMAGE not in df["image_id"].to_list()
    assert not (root / storage.key_of(planted["image_uri"][0])).exists()  # its image is not shipped either
    report = json.loads((root / "reports" / "decontamination.json").read_text())
    assert report["action"] == "drop"
    assert report["benchmarks"]["planted"]["benchmark_images"] == 3
    assert report["benchmarks"]["planted"]["matched_release_images"] == 1
    assert report["benchmarks"]["planted"]["matched_records"] == planted.height
    matches = pl.read_parquet(root / "reports" / "benchmark_matches.parquet")
    assert matches.select("image_id", "benchmark_file").rows() == [(PLANTED_IMAGE, "test/synpic_planted.jpg")]
    assert "| planted | 3 | 0 | 1 |" in (root / "README.md").read_text()


def test_flag_action_keeps_and_marks_and_rebuilds_are_byte_identical(release, benchmark_dir):
    from medtrinity_assets.defs.context import CATALOG
    from medtrinity_assets.export import build_release, parse_releases, verify_release

    _, root, storage = release
    raw = {
        "releases": [
            {"name": "export_test_flag", "sources": SOURCES, "decontamination": "flag", "benchmark_dirs": {"planted": str(benchmark_dir)},
             "split_salt": "medtrinity-demo-split-v1", "group_patterns": {"sam_med2d_demo": r"^images/(?P<group>.+)_\d+\.png$"}, "shard_max_samples": 10},
        ]
    }
    config = parse_releases(raw)["export_test_flag"]
    result = build_release(storage, config, CATALOG)
    assert result.verification.ok, result.verification.problems
    flagged = result.records.filter(pl.col("benchmark_match").is_not_null())
    assert set(flagged["image_id"]) == {PLANTED_IMAGE}
    assert flagged["benchmark_match"].unique().to_list() == ["planted:test/synpic_planted.jpg"]
    assert len(result.shards) > 3  # cut at 10 samples per shard
    # same inputs and config: identical files
    first = (Path(result.uri) / "checksums.sha256").read_text()
    again = build_release(storage, config, CATALOG)
    assert (Path(again.uri) / "checksums.sha256").read_text() == first and again.stale_removed == []
    # damage is found on read-back
    shard = Path(result.uri) / "webdataset" / result.shards[0].file
    data = bytearray(shard.read_bytes())
    data[1000] ^= 0xFF
    shard.write_bytes(bytes(data))
    (Path(result.uri) / "llava" / "train.json").unlink()
    problems = verify_release(storage, "export_test_flag").problems
    assert any(f"{result.shards[0].file}: content does not match" in p for p in problems)
    assert any("llava/train.json: listed in checksums.sha256 but missing" in p for p in problems)
    shutil.rmtree(result.uri)


def test_licence_filter_and_empty_release_error(release):
    from medtrinity_assets.defs.context import CATALOG
    from medtrinity_assets.export import ReleaseError, build_release, parse_releases

    _, root, storage = release
    manifest = json.loads((root / "release.json").read_text())
    status = {s["name"]: s["status"] for s in manifest["sources"]}
    assert status["niivue_nifti"] == "excluded: not redistributable"
    assert status["sam_med2d_demo"] == status["pydicom_dicom"] == "included"
    config = parse_releases({"releases": [{"name": "export_test_empty", "sources": ["niivue_nifti"], "redistributable_only": True}]})["export_test_empty"]
    with pytest.raises(ReleaseError, match="no eligible records.*niivue_nifti: excluded: not redistributable") as err:
        build_release(storage, config, CATALOG)
    assert err.value.reason == "empty_release"


def test_card_counts_licences_rejects_and_figure(release, expected):
    from medtrinity_assets.defs.context import CATALOG
    from medtrinity_assets.export import load_rejects

    _, root, storage = release
    card = (root / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert {f["split"] for f in front["configs"][0]["data_files"]} == {p.stem for p in (root / "data" / "full").glob("*.parquet")}
    df = _parquet(root)
    for modality, n in df.group_by("modality").len().iter_rows():
        images = df.filter(pl.col("modality") == modality)["image_id"].n_unique()
        assert re.search(rf"\| {re.escape(modality)} \| {n} \| {images} \|", card), modality
    for organ, n in df.explode("organs").group_by("organs").len().iter_rows():
        assert f"| {organ} | {n} |" in card
    for s in CATALOG.sources:
        assert s.licence in card and (s.citation or "-") in card
    included = [s["name"] for s in json.loads((root / "release.json").read_text())["sources"] if s["status"] == "included"]
    assert set(SOURCES) <= set(included)
    n_rejects = load_rejects(storage, included).height
    assert (f"**Rejects.** {n_rejects} input" in card) if n_rejects else ("No input of the included sources was rejected" in card)
    if n_rejects:
        for stage, source, reason, n in load_rejects(storage, included).group_by("stage", "dataset", "reason").len().iter_rows():
            assert f"| {stage} | {source} | {reason} | {n} |" in card
    n_quarantined = int(pl.concat([storage.read_parquet(k) for k in storage.list_keys("manifests/triplets/") if any(f"/{s}/" in k for s in included)])["quarantined"].sum())
    assert f"**Quarantine.** {n_quarantined} of the selected sources' triplets" in card
    words = [len(c.split()) for c in df["caption"].to_list()]
    assert f"| caption length (words) | {min(words)} |" in card
    with Image.open(root / "card" / "statistics.png") as fig:
        assert fig.format == "PNG" and fig.size[0] >= 1200 and fig.size[1] >= 800


def test_gallery_renders_in_headless_chromium(release, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium is not installed: `apt-get install -y chromium` (CI installs it in .ci/setup.d/chromium.sh)")
    _, root, _ = release
    df = _parquet(root)
    page = root / "gallery" / "index.html"
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", page.as_uri(),
    ]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    articles = re.findall(r'<article class="sample"[^>]*data-sample-id="([^"]+)"', dom)
    assert len(articles) == min(48, df.height)
    assert set(articles) <= set(df["sample_id"].to_list())
    assert set(df["dataset"].unique()) == {a.split("/", 1)[0] for a in articles}  # every source sampled
    shown = df.filter(pl.col("sample_id").is_in(articles))
    n_images = sum(1 if r["overlay"] == r["image"] else 2 for r in shown.iter_rows(named=True))
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert f'data-images-loaded="{n_images}"' in body and 'data-images-failed="0"' in body, body
    assert dom.count('<dd class="section_') == 5 * len(articles)
    first = shown.filter(pl.col("sample_id") == articles[0]).row(0, named=True)
    import html as html_lib

    assert html_lib.escape(first["caption"], quote=False) in dom  # a serialised DOM escapes no quotes in text
    for pid in first["passage_ids"]:
        assert f"<code>{html_lib.escape(pid)}</code>" in dom


def test_vqa_pairs_are_grounded_and_exported(release):
    _, root, storage = release
    df = _parquet(root)
    manifest = storage.read_parquet("manifests/vqa_pairs/demo.parquet")
    files = pl.concat([pl.read_parquet(p) for p in sorted((root / "vqa").glob("*.parquet"))])
    assert manifest.height > df["image_id"].n_unique() and manifest.sort("qa_id").equals(files.sort("qa_id"))
    joined = manifest.join(df.select("sample_id", pl.col("split").alias("rsplit"), "modality", "bbox", "width", "height", "roi_label"), on="sample_id")
    assert joined.height == manifest.height and (joined["split"] == joined["rsplit"]).all()
    assert (joined.filter((pl.col("category") == "modality") & (pl.col("answer_type") == "open"))["answer"] == joined.filter(
        (pl.col("category") == "modality") & (pl.col("answer_type") == "open"))["modality"]).all()
    # closed location answers agree with the ROI box geometry (not with the position phrase they came from)
    checked = 0
    for r in joined.filter((pl.col("category") == "location") & (pl.col("answer_type") == "closed")).iter_rows(named=True):
        x0, y0, x1, y1 = r["bbox"]
        cx, cy = (x0 + x1 + 1) / 2 / r["width"], (y0 + y1 + 1) / 2 / r["height"]
        m = re.search(r"in the (upper|lower) half|on the (left|right) side|near the centre", r["question"])
        truth = {"upper": cy < 0.5, "lower": cy > 0.5, "left": cx < 0.5, "right": cx > 0.5}.get(m.group(1) or m.group(2), None) if (m.group(1) or m.group(2)) else (0.4 <= cx <= 0.6 and 0.4 <= cy <= 0.6)
        assert (r["answer"] == "Yes") == truth, r
        checked += 1
    assert checked > 20
    llava = [e for p in sorted((root / "vqa").glob("llava_*.json")) for e in json.loads(p.read_text())]
    assert len(llava) == manifest.height and all((root / e["image"]).is_file() for e in llava)
    _appearance_answers_agree_with_the_stored_means(manifest, df)


def _appearance_answers_agree_with_the_stored_means(pairs: pl.DataFrame, records: pl.DataFrame) -> None:
    """HU answers are the record's rounded mean; a comparison with another structure of the image
    agrees with the sign of the difference of the two records' stored means (recomputed here)."""
    from medtrinity_assets.captions.labels import structure_name

    by_sample = {r["sample_id"]: r for r in records.iter_rows(named=True)}
    appearance = pairs.filter(pl.col("category") == "appearance")
    assert appearance.height > 20 and appearance["image"].str.starts_with("overlays/").all()
    hu = appearance.filter(pl.col("question").str.starts_with("What is the mean attenuation"))  # none: these CT slices are PNG
    for r in hu.iter_rows(named=True):
        assert r["answer"] == f"About {round(by_sample[r['sample_id']]['m_mean'])} HU", r
    compare = re.compile(r"(hypodense|hyperdense|similar in attenuation|isodense) (?:relative )?to the (.+)\?$")
    checked = 0
    for r in appearance.filter(pl.col("answer_type") == "closed").iter_rows(named=True):
        m = compare.search(r["question"])
        if not m:
            continue
        own = by_sample[r["sample_id"]]
        others = [o for o in by_sample.values() if o["image_id"] == own["image_id"] and o["roi_label"] and structure_name(o["roi_label"]).text == m.group(2)]
        if len(others) != 1:  # a structure in parts is compared through its pooled mean: not recomputed here
            continue
        diff = own["m_mean"] - others[0]["m_mean"]
        truth = {"hypodense": diff < 0, "hyperdense": diff > 0}.get(m.group(1), abs(diff) < 8.0)
        assert (r["answer"] == "Yes") == truth, (r["question"], r["answer"], own["m_mean"], others[0]["m_mean"])
        checked += 1
    assert checked >= 3


def test_cli_release_command(release, capsys, monkeypatch, tmp_path):
    from medtrinity_assets.cli import main, print_release

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    _, root, _ = release
    with pytest.raises(SystemExit, match="unknown release: nope"):
        main(["release", "--name", "nope"])
    print_release("demo")
    out = capsys.readouterr().out
    assert f"Release 'demo': {root}" in out and "gallery" in out
