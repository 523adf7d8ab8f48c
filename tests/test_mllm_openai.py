"""MLLMResource with the openai backend (async client) against a real local chat-completions server."""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import json
import random
import time

import pytest
from chat_servers import ChatServer

from medtrinity_assets.captions import build_prompt, compose_caption, format_sections, prompt_hash
from medtrinity_assets.captions.examples import ct_liver, xray_lungs
from medtrinity_assets.generation import CallCache, CaptionRequest, GenerationSettings, describe
from medtrinity_assets.generation.loop import ANSWER_SCHEMA
from medtrinity_resources.mllm import MLLMResource
from medtrinity_resources.mllm_backends.base import MLLMBackendError
from medtrinity_resources.mllm_backends.openai_compat import (
    IMAGE_SLOT,
    backoff_seconds,
    chat_completions_url,
    chat_payload,
    request_body,
    retry_after_seconds,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"overlay-bytes"


@pytest.fixture
def server():
    s = ChatServer("no script", usage=(100, 40))
    yield s
    s.close()


def marked(facts, marker: str):
    return dataclasses.replace(facts, coarse_caption=f"{facts.coarse_caption} [{marker}]")


def good_answer(facts) -> str:
    text, sections = compose_caption(facts, seed="canned")
    return format_sections(sections, text)


def resource(server, **kw) -> MLLMResource:
    base = dict(
        backend="openai",
        endpoint_url=server.url,
        model_name="llava-test",
        max_new_tokens=200,
        timeout_s=5.0,
        transport_retries=2,
        retry_backoff_s=0.01,
        api_key_env="MEDTRINITY_TEST_KEY",
    )
    if "max_retries" in kw:
        kw["transport_retries"] = kw.pop("max_retries")
    base.update(kw)
    return MLLMResource(**base)


def run(mllm: MLLMResource, requests: list[CaptionRequest], max_retries: int = 2, cache: CallCache | None = None):
    """The caption loop (`generation.describe`) over the resource, as the caption stage calls it."""
    return describe(mllm, requests, cache, GenerationSettings(max_retries=max_retries))


def test_request_shape_tokens_and_good_answer(server, monkeypatch):
    monkeypatch.setenv("MEDTRINITY_TEST_KEY", "sk-local")
    facts = marked(ct_liver(), "case-good")
    server.scripts["case-good"] = [{"status": 200, "content": good_answer(facts)}]
    [gen] = run(resource(server), [CaptionRequest("roi-1", facts, PNG)])
    body = server.bodies[0]
    assert body["model"] == "llava-test" and body["temperature"] == 0.0 and body["max_tokens"] == 200
    image, text = body["messages"][0]["content"]
    assert body["messages"][0]["role"] == "user"
    assert image["type"] == "image_url"
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    assert base64.b64decode(image["image_url"]["url"].split(",", 1)[1]) == PNG
    assert text == {"type": "text", "text": build_prompt(facts)}
    assert server.headers[0]["Authorization"] == "Bearer sk-local"
    assert gen.problems == [] and gen.attempts == 1
    assert gen.text == compose_caption(facts, seed="canned")[0]
    assert gen.sections["roi"] == compose_caption(facts, seed="canned")[1]["roi"]
    assert (gen.tokens_in, gen.tokens_out) == (100, 40)
    assert gen.backend == "openai" and gen.model == "llava-test" and gen.model_version == "llava-test@fp_test"
    assert gen.prompt_hash == prompt_hash(build_prompt(facts))
    assert gen.settings["temperature"] == 0.0 and gen.settings["max_new_tokens"] == 200 and body["seed"] == 0
    assert gen.cache_hit is False and gen.model_calls == 1 and gen.seconds > 0
    assert server.paths == {"/v1/chat/completions"}


def test_no_key_no_image(server, monkeypatch):
    monkeypatch.delenv("MEDTRINITY_TEST_KEY", raising=False)
    facts = marked(xray_lungs(), "case-text")
    server.scripts["case-text"] = [{"status": 200, "content": good_answer(facts)}]
    [gen] = run(resource(server), [CaptionRequest("roi-2", facts, None)])
    assert "Authorization" not in server.headers[0]
    assert [p["type"] for p in server.bodies[0]["messages"][0]["content"]] == ["text"]
    assert gen.problems == []


def test_transport_retries_after_500_and_429(server):
    facts = marked(ct_liver(), "case-flaky")
    server.scripts["case-flaky"] = [
        {"status": 500},
        {"status": 429, "retry_after": 0},
        {"status": 200, "content": good_answer(facts)},
    ]
    [gen] = run(resource(server), [CaptionRequest("roi-3", facts, PNG)])
    assert server.count("case-flaky") == 3
    assert gen.problems == [] and gen.attempts == 1 and gen.tokens_in == 100


def test_transport_errors_exhausted_are_flagged(server):
    ok, bad = marked(ct_liver(), "case-ok"), marked(xray_lungs(), "case-down")
    server.scripts["case-ok"] = [{"status": 200, "content": good_answer(ok)}]
    server.scripts["case-down"] = [{"status": 503}]
    gens = run(resource(server, max_retries=1), [CaptionRequest("a", ok, PNG), CaptionRequest("b", bad, PNG)])
    assert [g.request_id for g in gens] == ["a", "b"]
    assert gens[0].problems == []
    assert gens[1].problems == ["backend_error:http_503"] and gens[1].text == ""
    assert server.count("case-down") == 2


def test_timeout_then_success_and_timeout_flagged(server):
    slow, stuck = marked(ct_liver(), "case-slow"), marked(xray_lungs(), "case-stuck")
    server.scripts["case-slow"] = [
        {"sleep": 1.0, "status": 200, "content": "late"},
        {"status": 200, "content": good_answer(slow)},
    ]
    server.scripts["case-stuck"] = [{"sleep": 1.0, "status": 200, "content": "late"}]
    gens = run(resource(server, timeout_s=0.3, max_retries=1), 
        [CaptionRequest("s", slow, PNG), CaptionRequest("t", stuck, PNG)]
    )
    assert gens[0].problems == [] and gens[0].text
    assert gens[1].problems == ["backend_error:timeout"]


def test_unusable_answer_is_asked_again(server):
    facts = marked(ct_liver(), "case-refuse")
    server.scripts["case-refuse"] = [
        {"status": 200, "content": "I'm sorry, but I cannot view the image."},
        {"status": 200, "content": good_answer(facts)},
    ]
    [gen] = run(resource(server), [CaptionRequest("r", facts, PNG)])
    assert gen.attempts == 2 and gen.problems == []
    assert (gen.tokens_in, gen.tokens_out) == (200, 80)  # summed over attempts
    second = server.bodies[1]["messages"][0]["content"][1]["text"]
    assert "previous answer could not be used because it declined" in second
    assert gen.settings["answer_prompt_hash"] == prompt_hash(second) != gen.prompt_hash


def test_persistent_problems_are_flagged_not_dropped(server):
    facts = marked(ct_liver(), "case-bad")
    wrong = good_answer(facts).replace("upper left", "lower right") + " The bounding box is red."
    server.scripts["case-bad"] = [{"status": 200, "content": wrong, "finish_reason": "length"}]
    [gen] = run(resource(server, max_retries=1), [CaptionRequest("x", facts, PNG)])
    # a cut answer is asked once more with twice the limit, then flagged (no re-asks at the same limit)
    assert gen.attempts == 2 and gen.text
    assert [b["max_tokens"] for b in server.bodies] == [200, 400]
    assert {"forbidden_phrase", "side_contradiction", "truncated"} <= set(gen.problems)


def test_bounded_concurrency(server):
    facts = [marked(ct_liver(), f"case-c{i}") for i in range(6)]
    for i, f in enumerate(facts):
        server.scripts[f"case-c{i}"] = [{"sleep": 0.15, "status": 200, "content": good_answer(f)}]
    gens = run(resource(server, max_concurrency=2), [CaptionRequest(str(i), f, PNG) for i, f in enumerate(facts)])
    assert all(g.problems == [] for g in gens)
    assert server.max_inflight == 2


def test_a_rejected_request_is_flagged_and_the_rest_complete(server):
    bad, ok = marked(ct_liver(), "case-400"), marked(xray_lungs(), "case-fine")
    server.scripts["case-400"] = [{"status": 400}]
    server.scripts["case-fine"] = [{"status": 200, "content": good_answer(ok)}]
    gens = run(resource(server), [CaptionRequest("x", bad, PNG), CaptionRequest("y", ok, PNG)])
    assert gens[0].problems == ["backend_error:http_400"] and gens[0].text == ""
    assert "scripted 400" in gens[0].settings["error_detail"]
    assert gens[1].problems == []
    assert server.count("case-400") == 1  # not retried: the same request would be refused again


def test_configuration_errors(server):
    facts = marked(ct_liver(), "case-404")
    server.scripts["case-404"] = [{"status": 404}]
    with pytest.raises(MLLMBackendError, match="HTTP 404"):
        run(resource(server), [CaptionRequest("x", facts, PNG)])
    with pytest.raises(MLLMBackendError, match="model_name"):
        run(resource(server, model_name=""), [CaptionRequest("x", facts, PNG)])
    closed = ChatServer()
    url = closed.url
    closed.close()
    with pytest.raises(MLLMBackendError, match="unreachable"):
        run(MLLMResource(backend="openai", endpoint_url=url, model_name="m", transport_retries=0), [CaptionRequest("x", facts, PNG)])


def test_describe_text(server):
    server.answer = lambda _prompt: "The liver."
    server.scripts["[down]"] = [{"status": 503}]
    mllm = resource(server, max_retries=1)
    assert mllm.describe_text(["Which organ?", "Which organ again?"]) == ["The liver.", "The liver."]
    assert mllm.describe_text(["Which organ?", "[down] Which organ?"]) == ["The liver.", ""]
    with pytest.raises(MLLMBackendError, match="none of 1 prompts"):
        mllm.describe_text(["[down] again"])


def test_helpers():
    assert chat_completions_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert chat_completions_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert chat_completions_url("http://h:1/x/chat/completions") == "http://h:1/x/chat/completions"
    # the body with the image spliced in is exactly the JSON of the full payload
    for png in (PNG, None):
        full = json.dumps(chat_payload("m", 'say "hi" \u00e9', png, 10, 0.0, 1)).encode()
        assert request_body(chat_payload("m", 'say "hi" \u00e9', png, 10, 0.0, 1, IMAGE_SLOT), png) == full
    rng = random.Random(0)
    # equal-jitter exponential backoff: between half and all of base * 2**attempt, capped at 30 s
    for attempt, nominal in ((0, 0.5), (3, 4.0), (10, 30.0)):
        waits = [backoff_seconds(attempt, 0.5, None, rng) for _ in range(200)]
        assert nominal / 2 <= min(waits) < max(waits) <= nominal
    # Retry-After: never earlier than asked, at most 10% (and at most the base) later, capped at 60 s
    waits = [backoff_seconds(0, 0.5, "7", rng) for _ in range(200)]
    assert 7.0 <= min(waits) < max(waits) <= 7.5
    assert 60.0 <= backoff_seconds(0, 0.5, "3600", rng) <= 60.5
    assert retry_after_seconds("2.5") == 2.5 and retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now
    assert 3000 < retry_after_seconds(email.utils.formatdate(time.time() + 3600, usegmt=True)) <= 3600


def test_structured_output_json_answer_and_fallback_to_text(server):
    facts = marked(ct_liver(), "case-json")
    text, sections = compose_caption(facts, seed="canned")
    server.scripts["case-json"] = [{"status": 200, "content": json.dumps({**sections, "description": text})}]
    [gen] = run(resource(server), [CaptionRequest("j", facts, PNG)])
    fmt = server.bodies[0]["response_format"]
    assert fmt["json_schema"]["schema"] == ANSWER_SCHEMA and fmt["json_schema"]["strict"] is True
    assert server.bodies[0]["seed"] == 0 and server.bodies[0]["temperature"] == 0.0
    assert fmt["type"] == "json_schema" and set(fmt["json_schema"]["schema"]["required"]) == {*sections, "description"}
    assert gen.problems == [] and gen.text == text and gen.sections["roi"] == sections["roi"]

    # a server that refuses the schema is asked again in plain text, and not sent the schema again
    plain = marked(xray_lungs(), "case-noschema")
    server.scripts["case-noschema"] = [
        {"status": 400, "message": "response_format json_schema is not supported"},
        {"status": 200, "content": good_answer(plain)},
    ]
    mllm = resource(server, max_retries=0)  # the plain-text re-ask is not a transport retry
    [gen] = run(mllm, [CaptionRequest("p", plain, PNG)])
    asked = [b for b in server.bodies if "case-noschema" in json.dumps(b)]
    assert "response_format" in asked[0] and "response_format" not in asked[1]
    assert gen.problems == [] and gen.attempts == 1
    later = marked(ct_liver(), "case-later")
    server.scripts["case-later"] = [{"status": 200, "content": good_answer(later)}]
    run(mllm, [CaptionRequest("l", later, PNG)])
    assert "response_format" not in server.bodies[-1]  # this client no longer sends the schema
    # structured output off: plain text requests
    n = len(server.bodies)
    run(resource(server, structured_output=False), [CaptionRequest("q", facts, PNG)])
    assert "response_format" not in server.bodies[n]


def test_retry_after_is_honoured(server):
    """The server refuses the marker with 429 and Retry-After 1 s, then rejects (and counts) any request
    for it that comes before the second is up: only a client that waited gets through in 2 requests."""
    facts = marked(ct_liver(), "case-ratelimited")
    server.scripts["case-ratelimited"] = [
        {"status": 429, "retry_after": 1},
        {"status": 200, "content": good_answer(facts)},
    ]
    [gen] = run(resource(server, retry_backoff_s=0.01, max_retries=3), [CaptionRequest("w", facts, PNG)])
    assert server.count("case-ratelimited") == 2 and server.early == 0
    assert gen.problems == [] and gen.attempts == 1

    # 503 with Retry-After as well; retries are bounded: a server that keeps refusing ends flagged
    busy = marked(xray_lungs(), "case-busy")
    server.scripts["case-busy"] = [{"status": 503, "retry_after": 0.2}]
    [gen] = run(resource(server, max_retries=2), [CaptionRequest("b", busy, PNG)])
    assert gen.problems == ["backend_error:http_503"]
    assert server.count("case-busy") == 3 and server.early == 0


def test_a_client_that_ignores_retry_after_is_caught(server):
    """The rate limiter above can fail: requests sent before the time is up are refused and counted."""
    import httpx

    facts = marked(ct_liver(), "case-eager")
    server.scripts["case-eager"] = [{"status": 429, "retry_after": 30}, {"status": 200, "content": "never"}]
    prompt = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "[case-eager]"}]}]}
    statuses = [httpx.post(server.url + "/chat/completions", json=prompt).status_code for _ in range(2)]
    assert statuses == [429, 429] and server.early == 1


def test_concurrency_bound_at_scale(server):
    """64 requests at max_concurrency 8: the server never sees more than 8 at once, and does see 8."""
    server.answer = lambda _prompt: "The liver."
    server.delay = 0.2
    mllm = resource(server, max_concurrency=8)
    outs = mllm.generate([f"Which organ? {i}" for i in range(64)], [None] * 64)
    assert len(outs) == 64 and all(o.text == "The liver." for o in outs)
    assert server.received == 64 and server.max_inflight == 8


def test_one_400_among_many_is_isolated(server):
    facts = [marked(ct_liver(), f"case-n{i}") for i in range(12)]
    for i, f in enumerate(facts):
        server.scripts[f"case-n{i}"] = [{"status": 200, "content": good_answer(f)}]
    server.scripts["case-n7"] = [{"status": 400, "message": "This model's maximum context length is 4096 tokens"}]
    gens = run(resource(server, max_concurrency=4), [CaptionRequest(f"r{i}", f, PNG) for i, f in enumerate(facts)])
    flagged = [g.request_id for g in gens if g.problems]
    assert flagged == ["r7"] and gens[7].problems == ["backend_error:http_400"]
    assert "maximum context length" in gens[7].settings["error_detail"]
    assert all(g.text for g in gens if g.request_id != "r7") and server.received == 12


def test_generate_works_inside_a_running_event_loop(server):
    """Called from code that runs its own event loop (a notebook, an async sensor), generate still works."""
    import asyncio

    server.answer = lambda _prompt: "The liver."
    mllm = resource(server)

    async def caller():
        return mllm.generate(["Which organ?"], [None])

    [out] = asyncio.run(caller())
    assert out.text == "The liver." and out.tokens_in == 100


def test_a_422_naming_guided_decoding_falls_back_but_other_400s_do_not(server):
    """Refusals of the schema (400/422 naming it) switch to plain text; a context-length 400 does not."""
    facts = marked(ct_liver(), "case-422")
    server.scripts["case-422"] = [
        {"status": 422, "message": "Unsupported guided decoding backend"},
        {"status": 200, "content": good_answer(facts)},
    ]
    long = marked(xray_lungs(), "case-toolong")
    server.scripts["case-toolong"] = [{"status": 400, "message": "maximum context length is 4096 tokens"}]
    gens = run(resource(server, max_retries=0, max_concurrency=1), [CaptionRequest("a", facts, PNG), CaptionRequest("b", long, PNG)])
    assert gens[0].problems == [] and server.count("case-422") == 2
    assert gens[1].problems == ["backend_error:http_400"] and server.count("case-toolong") == 1
    first, second = [b for b in server.bodies if "case-422" in json.dumps(b)]
    assert "response_format" in first and "response_format" not in second
