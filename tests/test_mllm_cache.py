"""The content-addressed call cache: a rerun with nothing changed makes 0 model calls, a changed
prompt or model pays only for what changed, the image is part of the key; real local HTTP server,
real local storage resource."""

from __future__ import annotations

import dataclasses

import pytest
from chat_servers import ChatServer

from medtrinity_assets.captions import compose_caption, format_sections
from medtrinity_assets.captions.examples import ct_liver, xray_lungs
from medtrinity_assets.generation import CallCache, CaptionRequest, describe, totals
from medtrinity_resources.mllm import MLLMResource
from medtrinity_resources.storage import MedtrinityStorage

PNG_A = b"\x89PNG\r\n\x1a\n" + b"image-a"
PNG_B = b"\x89PNG\r\n\x1a\n" + b"image-b"


def marked(facts, marker):
    return dataclasses.replace(facts, coarse_caption=f"{facts.coarse_caption} [{marker}]")


def answer(facts) -> str:
    text, sections = compose_caption(facts, seed="canned")
    return format_sections(sections, text)


@pytest.fixture
def setup(tmp_path):
    facts = {m: marked(f(), m) for m, f in (("case-1", ct_liver), ("case-2", xray_lungs), ("case-3", ct_liver))}
    answers = {m: answer(f) for m, f in facts.items()}
    server = ChatServer(lambda prompt: next((a for m, a in answers.items() if m in prompt), "no answer"), usage=(50, 30))
    storage = MedtrinityStorage(root=str(tmp_path / "store"))
    yield server, storage, facts
    server.close()


def mllm(server, **kw) -> MLLMResource:
    return MLLMResource(backend="openai", endpoint_url=server.url, model_name="vlm-a", max_concurrency=2, **kw)


def test_rerun_makes_no_calls_and_changes_pay_only_for_themselves(setup):
    server, storage, facts = setup
    reqs = [CaptionRequest(m, f, PNG_A) for m, f in facts.items()]
    first = describe(mllm(server), reqs, CallCache(storage))
    assert server.calls == 3 and all(not g.cache_hit and g.model_calls == 1 and not g.problems for g in first)
    assert len(storage.list_keys("cache/mllm_calls")) == 3

    again = describe(mllm(server), reqs, CallCache(storage))
    assert server.calls == 3  # nothing changed: no model call
    assert all(g.cache_hit and g.model_calls == 0 and g.seconds == 0 for g in again)
    assert [(g.text, g.tokens_out, g.model_version) for g in again] == [(g.text, g.tokens_out, g.model_version) for g in first]

    # one changed prompt pays for one call
    changed = reqs[:2] + [CaptionRequest("case-3", dataclasses.replace(facts["case-3"], roi_label="cyst"), PNG_A)]
    describe(mllm(server), changed, CallCache(storage))
    assert server.calls == 4
    # the same prompt with another image is another call (two ROIs of one source may share a prompt)
    describe(mllm(server), [CaptionRequest("case-1", facts["case-1"], PNG_B)], CallCache(storage))
    assert server.calls == 5
    # another model revision or another seed pays again; the cache off pays every time
    describe(mllm(server, model_revision="r2"), reqs[:1], CallCache(storage))
    describe(mllm(server, seed=7), reqs[:1], CallCache(storage))
    describe(mllm(server), reqs[:1], CallCache(storage, enabled=False))
    assert server.calls == 8


def test_accounting_totals(setup):
    import polars as pl

    server, storage, facts = setup
    reqs = [CaptionRequest(m, f, PNG_A) for m, f in facts.items()]
    gens = describe(mllm(server), reqs[:2], CallCache(storage)) + describe(mllm(server), reqs, CallCache(storage))
    df = pl.DataFrame(
        [
            {"tokens_in": g.tokens_in, "tokens_out": g.tokens_out, "seconds": g.seconds, "model_calls": g.model_calls,
             "cache_hit": g.cache_hit, "attempts": g.attempts}
            for g in gens
        ]
    )
    t = totals(df, gpu_hour_usd=2.0)
    assert t["captions"] == 5 and t["model_calls"] == 3 and t["cache_hits"] == 2
    assert t["tokens_in_paid"] == 150 and t["tokens_out_paid"] == 90
    assert t["seconds_per_caption"] > 0
    assert t["projected_gpu_hours_full_run"] == pytest.approx(t["seconds_per_caption"] * 25_000_000 / 3600, rel=0.01)
    assert t["usd_per_1k"] == pytest.approx(t["gpu_hours_per_1k"] * 2.0, rel=0.05)
