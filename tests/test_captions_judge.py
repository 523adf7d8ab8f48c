"""The optional caption judge: a second model behind a real local chat-completions server scores a
sample of records; the score is the caption_confidence column and a disagreement quarantines the
record with the judge's reason. Real bundled images through the production stage functions."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from adversarial_corpus import load_corpus
from chat_servers import ChatServer
from demo_records import shard_frames
from medtrinity_assets.captions.checks.judge import judge_prompt, judged, parse_judgement
from medtrinity_assets.schema import RETRIEVED_KNOWLEDGE_SCHEMA, conform
from medtrinity_assets.stages.captions import caption_shard
from medtrinity_assets.stages.judge import judge_shard
from medtrinity_assets.stages.triplets import assemble_triplets, quarantine_counts
from medtrinity_resources.judge import CaptionJudgeResource
from medtrinity_resources.mllm import MLLMResource
from medtrinity_resources.mllm_backends.base import MLLMBackendError


def side_verdict(prompt: str) -> str:
    """The judge model: disagrees when the description puts the subject on the other side of the image."""
    horizontal = re.search(r"horizontal (\w+)\b", prompt).group(1)
    description = prompt.split("<<<", 1)[1].split(">>>", 1)[0]
    opposite = {"left": "right", "right": "left"}.get(horizontal)
    if opposite and re.search(rf"\b{opposite}(?= (?:part|region|portion|area|quadrant|side) of the (?:image|frame)\b| of centre\b)", description):
        return json.dumps({"score": 0.1, "reason": f"the description places the subject on the {opposite}, the facts on the {horizontal}"})
    return 'Verdict: {"score": 0.95, "reason": "consistent"}'


def JudgeServer(fail: int = 0) -> ChatServer:
    return ChatServer(side_verdict, fail=fail)


@pytest.fixture
def frames(tmp_path):
    images, rois, coarse, storage, licences = shard_frames("usgra_nerve_ultrasound", str(tmp_path))
    captions = caption_shard(images, rois, coarse, conform([], RETRIEVED_KNOWLEDGE_SCHEMA), storage, MLLMResource()).captions
    assert captions["problems"].list.len().sum() == 0  # the composer's captions pass the checks
    return images, rois, coarse, captions, licences


_IMAGE_SIDE = r"\b(left|right)(?= (?:part|region|portion|area|quadrant|side) of the (?:image|frame)\b| of centre\b)"


def _flip(text: str) -> str:
    return re.sub(_IMAGE_SIDE, lambda m: "right" if m.group(1) == "left" else "left", text)


def test_judge_scores_a_sample_and_quarantines_disagreements(frames):
    images, rois, coarse, captions, licences = frames
    # one record's caption names the wrong side (a model's slip the judge should catch)
    sided = [r for r, c in zip(captions["roi_id"], captions["caption"]) if re.search(_IMAGE_SIDE, c)]
    assert sided
    first = sided[0]
    bad = captions.with_columns(
        caption=pl.when(pl.col("roi_id") == first).then(pl.col("caption").map_elements(_flip, return_dtype=pl.String)).otherwise(pl.col("caption"))
    )
    server = JudgeServer()
    try:
        judge = CaptionJudgeResource(endpoint_url=server.url, model_name="judge-model", sample_percent=100)
        judgements = judge_shard(images, rois, coarse, bad, judge)
    finally:
        server.close()
    assert judgements.height == rois.height == len(server.prompts)
    triplets = assemble_triplets(images, rois, coarse, bad, licences, judgements, judge.min_score)
    assert triplets.height == rois.height  # nothing dropped
    row = triplets.filter(triplets["roi_id"] == first).row(0, named=True)
    assert row["caption_confidence"] == pytest.approx(0.1)
    assert row["quarantined"] and "judge_disagrees" in row["quarantine_reasons"]
    assert "places the subject" in row["judge_reason"]
    others = triplets.filter(triplets["roi_id"] != first)
    assert (others["caption_confidence"] == 0.95).all() and not others["quarantined"].any()
    assert others["judge_model"].to_list()[0].startswith("judge-model")
    assert quarantine_counts(triplets)["judge_disagrees"] == 1


def test_judge_sample_and_off(frames):
    images, rois, coarse, captions, licences = frames
    server = JudgeServer()
    try:
        off = judge_shard(images, rois, coarse, captions, CaptionJudgeResource(endpoint_url=server.url, model_name="j", sample_percent=0))
        assert off.is_empty() and not server.prompts
        half = judge_shard(images, rois, coarse, captions, CaptionJudgeResource(endpoint_url=server.url, model_name="j", sample_percent=50))
    finally:
        server.close()
    expected = {r for r in captions["roi_id"] if judged(r, 50)}
    assert set(half["roi_id"]) == expected and len(server.prompts) == len(expected)
    triplets = assemble_triplets(images, rois, coarse, captions, licences, half)
    unjudged = triplets.filter(~triplets["roi_id"].is_in(list(expected)))
    assert unjudged["caption_confidence"].is_null().all()


def test_judge_errors_leave_records_unjudged_not_quarantined(frames):
    images, rois, coarse, captions, licences = frames
    server = JudgeServer(fail=503)
    try:
        judgements = judge_shard(images, rois, coarse, captions, CaptionJudgeResource(endpoint_url=server.url, model_name="j", sample_percent=100, max_retries=0))
    finally:
        server.close()
    misconfigured = JudgeServer(fail=400)
    try:
        with pytest.raises(MLLMBackendError, match="HTTP 400"):  # a configuration problem is a clear error
            judge_shard(images, rois, coarse, captions, CaptionJudgeResource(endpoint_url=misconfigured.url, model_name="j", sample_percent=100))
    finally:
        misconfigured.close()
    assert judgements["caption_confidence"].is_null().all()
    assert all(r.startswith("judge_error:") for r in judgements["judge_reason"])
    triplets = assemble_triplets(images, rois, coarse, captions, licences, judgements)
    assert not triplets["quarantined"].any()


def test_prompt_carries_the_typed_facts_and_answers_parse():
    records, _ = load_corpus()
    prompt = judge_prompt(records["ct_liver_hcc"], "This CT image shows the liver.")
    assert "modality: CT" in prompt and "region of interest (the subject): liver" in prompt
    assert "patient side: right" in prompt and "hepatocellular carcinoma" in prompt and "pixel spacing: unknown" in prompt
    assert "structures it touches" not in prompt  # contacts not recorded
    assert "structures it touches: inferior vena cava\n" in judge_prompt(records["ct_aorta"], "The aorta.")
    assert parse_judgement('{"score": 0.3, "reason": "wrong side"}').score == pytest.approx(0.3)
    assert parse_judgement("score: 1").score == 1.0
    assert parse_judgement('{"score": 7}').score == 1.0
    assert parse_judgement("I cannot judge this.").score is None
