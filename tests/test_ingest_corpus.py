"""The project's bad-input corpus, run as the pipeline runs it: catalog -> manifest -> images stage.

Done when: no crash or hang (a FIFO would block forever; pytest-timeout fails the run), no
good record lost or overwritten, no planted PHI value in any output (Parquet, PNG chunks,
mask stacks, logs), and every catalog fault fails at load naming the source and the field.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import sys
import tempfile
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from PIL import Image

from ingest_corpus import LONG, NAMED_SOURCE_YAML, PLANTED, build_corpus
from medtrinity_assets.catalog import CatalogError, item_id_for, list_source, load_catalog
from medtrinity_assets.ingest import IngestPolicy, load_item
from medtrinity_assets.records import MaskRef, SourceItem
from medtrinity_assets.stages.common import load_mask_layers, save_mask_layers
from medtrinity_assets.stages.images import ingest_shard
from medtrinity_assets.stages.sources import source_manifest_and_findings
from medtrinity_resources.storage import MedtrinityStorage

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


@dataclass
class Run:
    base: Path
    expected: dict[str, dict[str, str | None]]
    images: pl.DataFrame
    rejects: pl.DataFrame
    findings: list[str]
    logs: str
    storage: MedtrinityStorage


class _FdCapture:
    """stdout/stderr at the file-descriptor level (C libraries write there too)."""

    def __enter__(self):
        self.tmp = tempfile.TemporaryFile()
        sys.stdout.flush(), sys.stderr.flush()
        self.saved = [os.dup(1), os.dup(2)]
        os.dup2(self.tmp.fileno(), 1), os.dup2(self.tmp.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stdout.flush(), sys.stderr.flush()
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)
        self.tmp.seek(0)
        self.text = self.tmp.read().decode("utf-8", errors="replace")
        self.tmp.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    base = tmp_path_factory.mktemp("corpus")
    catalog_path, expected = build_corpus(base)
    storage = MedtrinityStorage(root=str(base / "store"))
    (base / "store" / "images" / "corpus" / "img" / "blocked.png.png").mkdir(parents=True)  # a taken output path
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    root_logger = logging.getLogger()
    root_logger.addHandler(handler)
    old_level = root_logger.level
    root_logger.setLevel(logging.DEBUG)
    images, rejects, findings = [], [], []
    try:
        with _FdCapture() as fds:
            cat = load_catalog(catalog_path)
            for source in cat.sources:
                manifest, found = source_manifest_and_findings(cat, source)
                findings += found
                for shard in cat.shard_keys:
                    part = manifest.filter(pl.col("shard") == shard)
                    result = ingest_shard(part, {source.name: source.ingest}, storage, {source.name: source.rois})
                    images.append(result.images), rejects.append(result.rejects)
                    storage.write_parquet(f"manifests/images/{source.name}/{shard}.parquet", result.images)
                    storage.write_parquet(f"rejects/images/{source.name}/{shard}.parquet", result.rejects)
    finally:
        root_logger.removeHandler(handler)
        root_logger.setLevel(old_level)
    return Run(base, expected, pl.concat(images), pl.concat(rejects), findings, records.getvalue() + fds.text, storage)


def _key(source: str, row: dict) -> str:
    return row["item_id"] if source == "listed" else row["source_file"]


def test_the_corpus_has_at_least_sixty_kinds(run):
    file_kinds = sum(len(v) for v in run.expected.values())
    assert file_kinds + len(CATALOG_FAULTS) >= 60, (file_kinds, len(CATALOG_FAULTS))
    assert len({r for v in run.expected.values() for r in v.values() if r}) >= 20  # distinct reasons


def test_every_file_comes_through_or_is_rejected_with_its_reason(run):
    for source, expected in run.expected.items():
        got_rejects = {_key(source, r): r["reason"] for r in run.rejects.filter(pl.col("dataset") == source).to_dicts()}
        want_rejects = {k: v for k, v in expected.items() if v}
        assert got_rejects == want_rejects, source
        produced = {_key(source, r) for r in run.images.filter(pl.col("dataset") == source).to_dicts()}
        assert produced == {k for k, v in expected.items() if v is None}, source
    assert all(run.rejects["detail"].str.len_chars() > 0)


def test_no_good_record_is_lost_or_overwritten(run):
    ids, uris = run.images["image_id"].to_list(), run.images["image_uri"].to_list()
    assert len(set(ids)) == len(ids) and len(set(uris)) == len(uris)
    corpus = run.images.filter(pl.col("dataset") == "corpus")
    by_file = {r["source_file"]: r for r in corpus.to_dicts()}
    assert by_file["img/twin.png"]["image_id"] != by_file["img/twin.jpg"]["image_id"]
    slices = corpus.filter(pl.col("source_file") == "img/x.nii.gz")["image_id"].to_list()
    assert slices and by_file["img/x@axial0045.png"]["image_id"] == "corpus/img/x%40axial0045.png"
    assert "corpus/img/x.nii.gz@axial0045" not in {by_file["img/x@axial0045.png"]["image_id"]}
    for row in run.images.to_dicts():  # what is stored is what the row describes (nothing overwritten)
        pixels = np.asarray(Image.open(io.BytesIO(run.storage.read_uri(row["image_uri"]))))
        from medtrinity_assets.ingest import pixel_hashes

        assert pixel_hashes(pixels)[0] == row["image_sha256"], row["image_id"]
    for uri in uris:  # every output file name stays below the file-system limit
        assert max(len(part.encode()) for part in uri.split("/")) <= 200, uri
    long_id = by_file[f"img/{LONG}.png"]["item_id"]
    assert "~h" in long_id and long_id.endswith(".png")


def test_no_planted_phi_in_any_output(run):
    texts = [run.logs, "\n".join(run.findings)]
    for path in sorted((run.base / "store").rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".parquet":
            texts.append(pl.read_parquet(path).write_ndjson())
        elif path.suffix == ".npz":
            with np.load(io.BytesIO(data), allow_pickle=False) as z:  # every text member (sparse stacks have no "meta")
                texts.extend(str(z[k]) for k in z.files if z[k].dtype.kind in "USO")
        elif path.suffix == ".png":
            chunks, pos = [], 8
            while pos < len(data):
                n = int.from_bytes(data[pos : pos + 4], "big")
                chunks.append(data[pos + 4 : pos + 8])
                pos += 12 + n
            assert set(chunks) <= {b"IHDR", b"IDAT", b"IEND", b"PLTE"}, (path, chunks)
        texts.append(data.decode("latin-1"))
    blob = "\n".join(texts).lower()
    leaked = [token for token in PLANTED if token.lower() in blob]
    assert leaked == []
    phi_meta = json.loads(run.images.filter(pl.col("source_file") == "img/phi.dcm")["ingest_meta"][0])
    assert phi_meta["body_part"] == "" and phi_meta["image_type"] == ["ORIGINAL", "PRIMARY", "OTHER"]
    assert phi_meta["header_values_dropped"] == 2


def test_findings_report_links_partial_label_matches_and_manifest_rejects(run):
    text = "\n".join(run.findings)
    assert "source 'corpus': field 'root': 1 directory symlink(s) not followed: img/loop" in text
    assert "source 'corpus': field 'layout.masks.0.label_regex': 1 of" in text and "masks/partial_2.png" in text
    assert "source 'named': 3 item(s) are manifest rejects" in text
    assert "source 'listed': 1 item(s) are manifest rejects" in text


def test_near_duplicates_need_information_and_pixel_agreement(run):
    corpus = {r["source_file"]: r for r in run.images.filter(pl.col("dataset") == "corpus").to_dicts()}
    assert corpus["img/black.png"]["duplicate_of"] is None
    assert corpus["img/sparse16.png"]["duplicate_of"] is None
    assert corpus["img/sparse16.png"]["image_sha256"] != corpus["img/black.png"]["image_sha256"]


def test_dropped_small_components_are_counted(run):
    corpus = {r["source_file"]: r for r in run.images.filter(pl.col("dataset") == "corpus").to_dicts()}
    assert corpus["img/specks.png"]["gt_small_components"] == 2
    assert corpus["img/nuclei.png"]["gt_small_components"] == 0 and corpus["img/nuclei.png"]["n_gt_layers"] == 4000


def test_a_source_with_names_labels_and_paired_masks_in_under_25_lines(run):
    assert len([line for line in NAMED_SOURCE_YAML.strip().splitlines()]) <= 25
    named = {r["source_file"]: r for r in run.images.filter(pl.col("dataset") == "named").to_dicts()}
    ct, mr = named["named/ct-liv-001_scan.png"], named["named/mr-kid-002_scan.png"]
    assert (ct["modality"], ct["organs"], mr["modality"], mr["organs"]) == ("CT", ["liver"], "MRI", ["kidney"])
    labels = [[layer.label for layer in load_mask_layers(run.storage.read_uri(r["gt_masks_uri"]))] for r in (ct, mr)]
    assert labels == [["kidney left"], ["kidney right"]]


# ------------------------------------------------------------------------------------ catalog faults


def _base_catalog(tmp: Path) -> dict:
    (tmp / "data" / "img").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16), 9, np.uint8)).save(tmp / "data" / "img" / "a.png")
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(tmp / "data" / "img" / "a_mask_liver.png")
    source = {
        "name": "src",
        "title": "t",
        "modality": "CT",
        "root": "data",
        "layout": {"adapter": "files", "images": "img/a.png", "masks": [{"pattern": "img/{stem}_mask_*.png", "convention": "binary", "label_regex": "^{stem}_mask_(?P<label>.+)$"}]},
        "licence": "CC0",
        "redistributable": True,
    }
    return {"sources": [source]}


def _set(path: str, value):
    def apply(raw: dict, tmp: Path) -> None:
        keys = ["sources", 0, *[int(k) if k.isdigit() else k for k in path.split(".")]]
        node = raw
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return apply


def _explicit(item: dict):
    def apply(raw: dict, tmp: Path) -> None:
        raw["sources"][0]["layout"] = {"adapter": "explicit", "items": [item]}

    return apply


def _fifo_table(raw: dict, tmp: Path) -> None:
    os.mkfifo(tmp / "data" / "table.json")
    raw["sources"][0]["layout"]["masks"] = [{"pattern": "img/{stem}_mask_*.png", "convention": "multilabel", "label_table": "table.json"}]


CATALOG_FAULTS = [  # (change, field named in the error, words of the message)
    (_set("root", "../../../etc"), "root", "leaves the catalog's directory"),
    (_set("root", "/etc"), "root", "system directory"),
    (_set("root", "s3://bucket/prefix"), "root", "remote location"),
    (_set("root", "nowhere"), "root", "directory not found"),
    (_set("modality", "Telepathy"), "modality", "unknown modality 'Telepathy'"),
    (_set("overrides", [{"match": "*", "modality": "Mind reading"}]), "overrides.0.modality", "unknown modality"),
    (_set("layout.masks.0.label_regex", "^{stem}_(?P<label>.+"), "layout.masks.0.label_regex", "not a valid regular expression"),
    (_set("layout.masks.0.label_regex", "^{stem}_mask_(.+)$"), "layout.masks.0.label_regex", "(?P<label>...)"),
    (_set("layout.masks.0.label_regex", "^{case}_(?P<label>.+)$"), "layout.masks.0.label_regex", "unknown template"),
    (_set("layout.masks.0.pattern", "../outside/{stem}.png"), "layout.masks.0.pattern", "climbs out of the source root"),
    (_set("layout.masks.0.pattern", "img/{case}_seg.png"), "layout.masks.0.pattern", "unknown template"),
    (_set("layout.images", "/etc/*"), "layout.images", "must be relative to the source root"),
    (_set("layout.images", ["img/*.png", "../*.png"]), "layout.images.1", "climbs out"),
    (_set("layout.names", {"regex": "(?P<case>[0-9+"}), "layout.names.regex", "not a valid regular expression"),
    (_set("layout.names", {"regex": "(?P<modality>[a-z]+)", "modality": {"xx": "Telepathy"}}), "layout.names.modality.xx", "unknown modality"),
    (_set("layout.names", {"regex": "(?P<stem>[a-z]+)"}), "layout.names.regex", "reserved"),
    (_explicit({"image": "../../etc/passwd"}), "layout.items.0.image", "climbs out"),
    (_explicit({"image": "img/a.png", "masks": [{"path": "/etc/shadow", "convention": "binary", "label": "x"}]}), "layout.items.0.masks.0.path", "relative"),
    (_explicit({"image": "img/a.png", "modality": "Astrology"}), "layout.items.0.modality", "unknown modality"),
    (_set("layout.images", "img/*.jpeg"), "layout.images", "match no file"),
    (_set("layout.masks.0.pattern", "img/{stem}_seg_*.png"), "layout.masks.0.pattern", "matches no mask file"),
    (_set("layout.masks.0.label_regex", "^{stem}_mask_(?P<label>kidney)$"), "layout.masks.0.label_regex", "matches none of the 1 mask files"),
    (_set("layout.masks", [{"pattern": "img/{stem}_mask_*.png", "convention": "multilabel", "label_table": "gone.json"}]), "layout.masks.0.label_table", "cannot read gone.json"),
    (_fifo_table, "layout.masks.0.label_table", "not a regular file"),
    (_set("rois", {"min_area_px": 0}), "rois.min_area_px", "greater than or equal to 1"),
    (_set("ingest", {"slicing": {"select": "most"}}), "ingest.slicing.select", "Input should be"),
    (_set("colour", "red"), "colour", "Extra inputs are not permitted"),
    (_set("labels", {"side": "middle"}), "labels.side", "Input should be"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("change, field, words", CATALOG_FAULTS, ids=[f[1] + ":" + f[2][:24] for f in CATALOG_FAULTS])
def test_every_catalog_fault_fails_at_load_naming_source_and_field(tmp_path, change, field, words):
    raw = _base_catalog(tmp_path)
    assert load_catalog(_write(tmp_path, raw), check_files=True).sources[0].name == "src"
    raw = copy.deepcopy(raw)
    change(raw, tmp_path)
    with pytest.raises(CatalogError) as err:
        load_catalog(_write(tmp_path, raw), check_files=True)
    message = str(err.value)
    assert f"source 'src': field '{field}'" in message and words in message, message


def _write(tmp: Path, raw: dict) -> Path:
    path = tmp / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_catalog_wide_faults_and_the_modality_extension_point(tmp_path):
    raw = _base_catalog(tmp_path)
    raw["sources"][0]["modality"] = "Thermography"
    with pytest.raises(CatalogError, match="unknown modality 'Thermography'"):
        load_catalog(_write(tmp_path, raw))
    raw["modalities"] = [{"name": "Thermography", "aliases": ["thermal imaging"]}]
    raw["sources"][0]["overrides"] = [{"match": "*", "modality": "thermal_imaging"}]
    cat = load_catalog(_write(tmp_path, raw))
    assert list_source(cat, cat.sources[0]).items[0].modality == "Thermography"  # alias -> canonical name
    raw["sources"].append(dict(raw["sources"][0]))
    with pytest.raises(CatalogError, match="duplicate source name 'src'"):
        load_catalog(_write(tmp_path, raw))
    (tmp_path / "bad.yaml").write_text("sources:\n  - name: [unclosed\n")
    with pytest.raises(CatalogError, match=r"not valid YAML: line \d+, column \d+"):
        load_catalog(tmp_path / "bad.yaml")


# ------------------------------------------------------------------------------------ ids and memory


def test_item_ids_are_unique_by_construction():
    names = ["twin.png", "twin.jpg", "x@axial0045.png", "x.nii.gz", "a#1.png", "a%231.png", "a~b.png", "n\nl.png", LONG + ".png"]
    ids = [item_id_for(f"d/{n}") for n in names]
    assert len(set(ids)) == len(ids)
    assert ids[2] == "d/x%40axial0045.png" and ids[4] == "d/a%231.png" and ids[5] == "d/a%25231.png"
    assert all("@" not in i and "#" not in i and "\n" not in i for i in ids)
    assert len(ids[-1].split("/")[-1].encode()) <= 150


def test_instance_mask_memory_follows_the_foreground_not_instances_times_pixels(tmp_path):
    from ingest_corpus import _nuclei

    tile, ids = _nuclei(4000, 512)
    Image.fromarray(tile).save(tmp_path / "t.png")
    import tifffile

    tifffile.imwrite(tmp_path / "t_mask.tif", ids)
    item = SourceItem("d", "t.png", str(tmp_path / "t.png"), "t.png", "png", "Microscopy", masks=(MaskRef(str(tmp_path / "t_mask.tif"), "instance", label="nucleus"),))
    tracemalloc.start()
    try:
        sl = load_item(item, IngestPolicy())[0]
        packed = save_mask_layers(sl.masks, (sl.height, sl.width))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(sl.masks) == 4000
    # full frames would be 4,000 x 512 x 512 bytes = 1 GiB; crops and packed bits stay small
    assert peak < 64 * 2**20, peak
    back = load_mask_layers(packed)
    assert [layer.instance for layer in back] == list(range(1, 4001))
    assert np.array_equal(back[17].mask, ids == 18) and back[17].mask.shape == (512, 512)
