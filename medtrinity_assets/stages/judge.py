"""caption judging for the triplets of one shard: a second model scores a sample of captions.

`judge_shard` rebuilds each sampled record's typed facts (the same `facts_for` the captions used,
without passages), asks the judge resource once per record, and returns one row per judged record:
roi_id, caption_confidence (the score, null when the judge gave none), judge_reason, judge_model.
`assemble_triplets` quarantines a record whose score is below the judge's minimum with the code
``judge_disagrees`` (the reason stays in ``judge_reason``); records outside the sample, and
answers the judge could not give (``judge_error:<code>`` in judge_reason), are not quarantined.
"""

from __future__ import annotations

import polars as pl

from medtrinity_assets.captions.checks.judge import judge_prompt, judged, parse_judgement
from medtrinity_assets.stages.captions import ShardFacts

JUDGE_COLUMNS = {"roi_id": pl.String, "caption_confidence": pl.Float64, "judge_reason": pl.String, "judge_model": pl.String}


def judge_shard(images: pl.DataFrame, rois: pl.DataFrame, coarse: pl.DataFrame, captions: pl.DataFrame, judge) -> pl.DataFrame:
    """Judgements of the sampled records (empty when the judge is off)."""
    empty = pl.DataFrame(schema=JUDGE_COLUMNS)
    if captions.is_empty() or not judge.enabled:
        return empty
    by_roi = {r["roi_id"]: r for r in rois.iter_rows(named=True)}
    shard_facts = ShardFacts(images, rois, coarse)
    ids, prompts = [], []
    for c in captions.iter_rows(named=True):
        if not (c["caption"] or "").strip() or not judged(c["roi_id"], judge.sample_percent):
            continue
        facts = shard_facts(by_roi[c["roi_id"]])
        ids.append(c["roi_id"])
        prompts.append(judge_prompt(facts, c["caption"]))
    if not prompts:
        return empty
    rows = []
    for roi_id, raw in zip(ids, judge.answer(prompts), strict=True):
        if raw.error:
            rows.append({"roi_id": roi_id, "caption_confidence": None, "judge_reason": f"judge_error:{raw.error}", "judge_model": judge.model_name})
            continue
        j = parse_judgement(raw.text, raw.model_version or judge.model_name)
        rows.append({"roi_id": roi_id, "caption_confidence": j.score, "judge_reason": j.reason, "judge_model": j.model})
    return pl.DataFrame(rows, schema=JUDGE_COLUMNS)
