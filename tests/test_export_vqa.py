"""VQA derivation: rule pairs are true by construction; model pairs are parsed, checked, and fall back."""

from __future__ import annotations

import json

import polars as pl
import pytest
from chat_servers import ChatServer

from medtrinity_assets.export.config import VqaSettings
from medtrinity_assets.export.llava import vqa_conversations
from medtrinity_assets.export.vqa import rule_based_pairs, vqa_summary, vqa_targets
from medtrinity_assets.export.vqa_model import derive_vqa, parse_vqa_answer, validate_pair
from medtrinity_resources.mllm import MLLMResource


_VERTICAL = ("upper", "upper-middle", "middle", "lower-middle", "lower")
_HORIZONTAL = ("left", "left-center", "center", "right-center", "right")
_CELLS = {f"{v} {h}": (r, c) for r, v in enumerate(_VERTICAL) for c, h in enumerate(_HORIZONTAL)}


def _record(sample_id: str, image_id: str, label: str | None, position: str | None, area: float | None, **kw) -> dict:
    base = {
        "sample_id": sample_id,
        "image_id": image_id,
        "split": "train",
        "dataset": "src",
        "image": f"images/{image_id}.png",
        "overlay": f"overlays/{sample_id}.png" if label else f"images/{image_id}.png",
        "modality": "CT",
        "organs": ["abdomen"],
        "labels": [],
        "roi_label": label,
        "roi_origin": "ground_truth" if label else "none",
        "position": position,
        "grid_row": _CELLS[position][0] if position else None,
        "grid_col": _CELLS[position][1] if position else None,
        "area_frac": area,
        "caption": "A CT image of the abdomen.",
    }
    return {**base, **kw}


def _records() -> pl.DataFrame:
    return pl.DataFrame(
        [
            _record("src/a#000", "src/a", "liver", "upper-middle left-center", 0.08),
            _record("src/a#001", "src/a", "spleen", "middle right", 0.004),
            _record("src/a#002", "src/a", "kidney_left", "middle center", 0.02),
            _record("src/b#whole", "src/b", None, None, None, modality="X-ray", organs=["chest"], labels=["tuberculosis"], split="validation"),
            _record("src/c#whole", "src/c", None, None, None, modality="X-ray", organs=["chest"], labels=["no finding"], split="test"),
        ]
    )


def _qa(pairs: pl.DataFrame, sample_id: str) -> dict[str, str]:
    return dict(pairs.filter(pl.col("sample_id") == sample_id).select("question", "answer").iter_rows())


def test_rule_pairs_are_grounded_in_the_record():
    pairs = rule_based_pairs(_records(), VqaSettings())
    assert pairs["qa_id"].is_unique().all()
    assert set(pairs["category"]) == {"modality", "organ", "location", "finding", "size"}
    liver = _qa(pairs, "src/a#000")
    # image-level questions ride on the image's first record, once per image
    assert liver["What imaging modality was used to acquire this image?"] == "CT"
    assert liver["Is the imaging modality of this image CT?"] == "Yes"
    assert liver["Which organ or body region is shown in this image?"] == "Abdomen"
    assert pairs.filter((pl.col("image_id") == "src/a") & (pl.col("category") == "modality") & (pl.col("answer_type") == "open")).height == 1
    # ROI questions: structure, halves/sides in image terms, size bucket
    assert liver["What structure is outlined in this image?"] == "liver"
    assert liver["Where is the outlined liver located in the image?"] == "Upper part of the image, left of centre"
    assert liver["Is the outlined liver in the upper half of the image?"] == "Yes"
    assert liver["Is the outlined liver in the lower half of the image?"] == "No"
    assert liver["Is the outlined liver on the left side of the image?"] == "Yes"
    assert liver["Is the outlined liver on the right side of the image?"] == "No"
    assert liver["How large is the outlined liver relative to the whole image?"] == "Between 5% and 25% of the image"
    spleen = _qa(pairs, "src/a#001")
    assert "Is the outlined spleen in the upper half of the image?" not in spleen  # 'middle': no half claimed
    assert spleen["Is the outlined spleen on the right side of the image?"] == "Yes"
    kidney = _qa(pairs, "src/a#002")
    assert kidney["Is the outlined left kidney near the centre of the image?"] == "Yes"
    # a "no" about the structure names another label of the source, never one sharing a word
    wrong = [q for q, a in liver.items() if q.startswith("Is the outlined structure the") and a == "No"]
    assert len(wrong) == 1 and "liver" not in wrong[0]
    # the negative modality is one the image certainly is not
    no_mod = [q for q, a in liver.items() if "imaging modality of this image" in q and a == "No"]
    assert len(no_mod) == 1 and "CT" not in no_mod[0]
    # findings: reported labels, and normal images get a "no abnormality" question
    tb = _qa(pairs, "src/b#whole")
    assert tb["What finding is reported for this image?"] == "tuberculosis"
    assert tb["Is tuberculosis present in this image?"] == "Yes"
    assert _qa(pairs, "src/c#whole") == {
        **{k: v for k, v in _qa(pairs, "src/c#whole").items() if "finding" not in k},
        "Does this image show any abnormal finding?": "No",
    }
    # ROI questions are asked on the overlay, image-level questions on the clean image; splits inherited
    roi_rows = pairs.filter(pl.col("category").is_in(["location", "size"]))
    assert (roi_rows["image"].str.starts_with("overlays/")).all()
    assert (pairs.filter(pl.col("category") == "modality")["image"].str.starts_with("images/")).all()
    assert dict(pairs.group_by("sample_id").agg(pl.col("split").first()).iter_rows()) == {
        "src/a#000": "train", "src/a#001": "train", "src/a#002": "train", "src/b#whole": "validation", "src/c#whole": "test"
    }
    summary = vqa_summary(pairs)
    assert summary["closed_yes"] + summary["closed_no"] == pairs.filter(pl.col("answer_type") == "closed").height
    llava = vqa_conversations(pairs)
    assert len(llava) == pairs.height and llava[0]["conversations"][0]["value"].startswith("<image>\n")


def test_contact_questions_follow_the_contact_set():
    """'Does the outlined X touch Y?' is asked with "Yes" about a structure in `contacts`; never
    "No" (a gap between masks does not show two structures apart), never without recorded
    contacts, never about a same-label neighbour."""
    near = [{"kind": "direction", "other": "aorta", "direction": "anterior", "count": 1}, {"kind": "borders", "other": "liver", "direction": None, "count": 1}]
    records = pl.DataFrame(
        [
            _record("src/a#000", "src/a", "kidney_right", "middle left", 0.02, contacts=["liver", "kidney_right"], relations=near),
            _record("src/a#001", "src/a", "spleen", "middle right", 0.01, contacts=None, relations=near),
            _record("src/a#002", "src/a", "aorta", "middle center", 0.01, contacts=["aorta"], relations=near),
        ]
    )
    pairs = rule_based_pairs(records, VqaSettings())
    contact = pairs.filter(pl.col("category") == "relation")
    assert dict(contact.select("question", "answer").iter_rows()) == {"Does the outlined right kidney touch the liver?": "Yes"}
    assert contact["sample_id"].to_list() == ["src/a#000"] and contact["image"].str.starts_with("overlays/").all()


def test_roi_cap_and_no_negatives():
    settings = VqaSettings(max_rois_per_image=1, negatives=False)
    targets = vqa_targets(_records(), settings)
    roi_targets = [t.record["sample_id"] for t in targets if t.roi_level]
    assert roi_targets == ["src/a#000"]  # the largest ROI of image a
    pairs = rule_based_pairs(_records(), settings)
    noes = pairs.filter((pl.col("answer_type") == "closed") & (pl.col("answer") == "No"))
    assert noes["question"].to_list() == ["Does this image show any abnormal finding?"]  # a fact, not a negative sample


def test_model_pairs_are_validated_against_the_record():
    r = _records().row(0, named=True)
    ok = validate_pair({"question": "Is this a CT scan?", "answer": "yes.", "answer_type": "closed", "category": "modality"}, r, True)
    assert ok is not None and ok.answer == "Yes"
    assert validate_pair({"question": "Is this an MRI?", "answer": "Yes", "answer_type": "closed", "category": "modality"}, r, True) is None
    assert validate_pair({"question": "Is this an MRI?", "answer": "No", "answer_type": "closed", "category": "modality"}, r, True) is not None
    assert validate_pair({"question": "Which modality?", "answer": "An MRI scan", "answer_type": "open", "category": "modality"}, r, True) is None
    assert validate_pair({"question": "Where is it?", "answer": "On the right", "answer_type": "open", "category": "location"}, r, True) is None
    assert validate_pair({"question": "Where is it?", "answer": "Upper left", "answer_type": "open", "category": "location"}, r, True) is not None
    assert validate_pair({"question": "Is it big?", "answer": "maybe", "answer_type": "closed", "category": "size"}, r, True) is None
    assert validate_pair({"question": "Where is it?", "answer": "Upper left", "answer_type": "open", "category": "location"}, r, False) is None
    assert validate_pair({"question": "No question mark", "answer": "CT", "answer_type": "open", "category": "modality"}, r, True) is None
    assert parse_vqa_answer('Here you go:\n```json\n[{"question": "q?", "answer": "a"}]\n```') == [{"question": "q?", "answer": "a"}]
    assert parse_vqa_answer("no json here") == []


@pytest.fixture
def qa_server():
    def answer_for(prompt: str) -> str:
        if '"roi_label": "spleen"' in prompt:
            return "I cannot help with that."  # no pairs: this record falls back to the rules
        return json.dumps(
            [
                {"question": "What modality is this?", "answer": "Computed tomography", "answer_type": "open", "category": "modality"},
                {"question": "Is this an ultrasound image?", "answer": "Yes", "answer_type": "closed", "category": "modality"},  # contradicts: dropped
                {"question": "Is the region small?", "answer": "perhaps", "answer_type": "closed", "category": "size"},  # malformed: dropped
            ]
        )

    server = ChatServer(answer_for)
    yield server
    server.close()


def test_model_backend_writes_pairs_through_describe_text(qa_server):
    mllm = MLLMResource(backend="openai", endpoint_url=qa_server.url, model_name="qa-model", transport_retries=0, retry_backoff_s=0.01)
    records = _records().head(2)
    pairs, info = derive_vqa(records, mllm, VqaSettings())
    assert len(qa_server.prompts) == 2 and all("Description: A CT image of the abdomen." in p for p in qa_server.prompts)
    assert info["targets"] == 2 and info["model_pairs"] == 1 and info["invalid_pairs"] == 2 and info["fallback_targets"] == 1
    model = pairs.filter(pl.col("generator") == "mllm:openai:qa-model")
    assert model.select("sample_id", "answer").rows() == [("src/a#000", "Computed tomography")]
    fallback = pairs.filter(pl.col("generator").str.starts_with("rules:"))
    assert set(fallback["sample_id"]) == {"src/a#001"} and fallback.height > 3
    # the grounded composer (offline default) uses the rules without calling any model
    offline, info = derive_vqa(records, MLLMResource(backend="grounded_composer"), VqaSettings())
    assert info["generator"].startswith("rules:") and offline.height > 0 and len(qa_server.prompts) == 2


def _measured(sample_id: str, label: str, mean: float, ring: float, std: float, **kw) -> dict:
    """A CT ROI record with the measurement columns the composer reads (area, spread, shape...)."""
    contrast = (mean - ring) / ((std**2 + 10.0**2) / 2) ** 0.5
    m = {
        "m_intensity_unit": "HU", "m_mean": mean, "m_ring_mean": ring, "m_std": std, "m_ring_std": 10.0, "m_contrast": contrast,
        "m_equivalent_diameter_mm": 19.4, "m_circularity": 0.9, "m_elongation": 0.95, "m_solidity": 0.98,
        "m_margin_sharpness": 2.0, "m_label_count": 1, "area_px": 400, "n_components": 1, "frame_plane": "axial",
    }
    return _record(sample_id, "src/a", label, "middle center", 0.01, **{**m, **kw})


def test_appearance_questions_follow_the_measurements():
    """Appearance answers are the composer's readings of the record's measurements: brightness
    against the ring (and the opposite reading answered No), HU, texture, shape, margin, diameter
    in mm; against a related measured structure of the image; the level of an axial slice."""
    rel = [{"kind": "direction", "other": "spleen", "direction": "anterior", "count": 1}]
    records = pl.DataFrame(
        [
            _measured("src/a#000", "kidney_left", 13.0, 40.0, 12.0, relations=rel),
            _measured("src/a#001", "spleen", 30.0, 0.0, 10.0, m_margin_sharpness=0.5),
            _measured("src/a#002", "vertebrae_L2", 400.0, 30.0, 140.0, m_circularity=0.3, m_solidity=0.6, relations=rel, contacts=["kidney_left"]),
        ]
    )
    pairs = rule_based_pairs(records, VqaSettings())
    kidney = _qa(pairs, "src/a#000")
    assert kidney["How does the outlined left kidney appear relative to the surrounding tissue?"] == "Hypodense relative to the surrounding tissue"
    assert kidney["Is the outlined left kidney hypodense relative to its surroundings?"] == "Yes"
    assert kidney["Is the outlined left kidney hyperdense relative to its surroundings?"] == "No"
    assert kidney["Is the outlined left kidney hypodense relative to the spleen?"] == "Yes"  # 13 HU against 30 HU
    assert kidney["Is the outlined left kidney hyperdense relative to the spleen?"] == "No"
    assert kidney["What is the mean attenuation of the outlined left kidney?"] == "About 13 HU"
    assert kidney["Is the outlined left kidney homogeneous or heterogeneous?"] == "Homogeneous"
    assert kidney["What shape is the outlined left kidney on this image?"] == "Round"
    assert kidney["Are the margins of the outlined left kidney well defined?"] == "Yes"
    assert kidney["What is the equivalent diameter of the outlined left kidney?"] == "About 19 mm"
    assert kidney["At which vertebral level is this axial slice?"] == "L2"  # image level, on the first record
    spleen = _qa(pairs, "src/a#001")
    assert spleen["Is the outlined spleen hyperdense relative to its surroundings?"] == "Yes"
    assert spleen["Are the margins of the outlined spleen well defined?"] == "No"
    # no relation from the spleen, but the kidney is of its comparison class (solid organ)
    assert spleen["Is the outlined spleen hyperdense relative to the left kidney?"] == "Yes"
    bone = _qa(pairs, "src/a#002")
    assert bone["What shape is the outlined L2 vertebra on this image?"] == "Irregular"
    assert bone["Is the outlined L2 vertebra homogeneous or heterogeneous?"] == "Heterogeneous"  # 140 HU spread
    assert not any("spleen?" in q or "kidney?" in q for q in bone if "hyper" in q or "hypo" in q)  # bone is not read against organs
    rows = pairs.filter(pl.col("category") == "appearance")
    assert rows["image"].str.starts_with("overlays/").all() and rows["generator"].str.ends_with("vqa-rules-v3").all()


def test_no_appearance_question_without_a_reliable_measurement():
    """A difference below the reliable minimum, a tiny ROI, a coronal slice, a plural name."""
    records = pl.DataFrame(
        [
            _measured("src/a#000", "liver", 56.0, 50.0, 5.0, frame_plane="coronal"),  # 0.76 SD but 6 HU apart: no claim
            _measured("src/a#001", "vertebrae_L1", 300.0, 40.0, 50.0, area_px=10, frame_plane="coronal"),  # below min_area_px
            _measured("src/a#002", "nerves", 20.0, 60.0, 10.0, frame_plane="coronal", n_components=3),
        ]
    )
    pairs = rule_based_pairs(records, VqaSettings())
    liver, tiny, nerves = (_qa(pairs, f"src/a#00{i}") for i in range(3))
    assert not any("surround" in q for q in liver) and "What is the mean attenuation of the outlined liver?" in liver
    assert not any(q for q in tiny if "attenuation" in q or "homogeneous" in q)
    assert not any("vertebral level" in q for q in {**liver, **tiny, **nerves})  # not an axial slice
    assert nerves["Are the outlined nerves hypodense relative to their surroundings?"] == "Yes"
    assert nerves["Where are the outlined nerves located in the image?"] == "Central part of the image"
