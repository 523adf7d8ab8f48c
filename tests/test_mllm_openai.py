"""MLLMResource with the openai backend against a local chat-completions server started here."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from medtrinity_assets.captions import build_prompt, compose_caption, format_sections, prompt_hash
from medtrinity_assets.captions.examples import ct_liver, xray_lungs
from medtrinity_assets.generation import CallCache, CaptionRequest, GenerationSettings, describe
from medtrinity_resources.mllm import MLLMResource
from medtrinity_resources.mllm_backends.base import MLLMBackendError
from medtrinity_resources.mllm_backends.openai_compat import backoff_seconds, chat_completions_url

PNG = b"\x89PNG\r\n\x1a\n" + b"overlay-bytes"


class FakeServer:
    """A chat-completions server whose answers are scripted per marker found in the prompt."""

    def __init__(self):
        self.scripts: dict[str, list[dict]] = {}
        self.default: dict = {"status": 200, "content": "no script"}
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.bodies.append(body)
                    server.headers.append(dict(self.headers))
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                    step = server.next_step(body, self.path)
                try:
                    time.sleep(step.get("sleep", 0.0))
                    status = step.get("status", 200)
                    if status == 200:
                        payload = {
                            "id": "cmpl-1",
                            "model": body["model"],
                            "system_fingerprint": "fp_test",
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": step["content"]},
                                    "finish_reason": step.get("finish_reason", "stop"),
                                }
                            ],
                            "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140},
                        }
                    else:
                        payload = {"error": {"message": step.get("message", f"scripted {status}")}}
                    data = json.dumps(payload).encode()
                    try:
                        self.send_response(status)
                        if "retry_after" in step:
                            self.send_header("Retry-After", str(step["retry_after"]))
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # the client timed out and left
                finally:
                    with server.lock:
                        server.inflight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def next_step(self, body: dict, path: str) -> dict:
        assert path == "/v1/chat/completions"
        prompt = next(p["text"] for p in body["messages"][0]["content"] if p["type"] == "text")
        for marker, steps in self.scripts.items():
            if marker in prompt:
                return steps.pop(0) if len(steps) > 1 else steps[0]
        return self.default

    def count(self, marker: str) -> int:
        return sum(marker in json.dumps(b) for b in self.bodies)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FakeServer()
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
    wrong = good_answer(facts).replace("upper left part", "lower right part") + " The bounding box is red."
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
    closed = FakeServer()
    url = closed.url
    closed.close()
    with pytest.raises(MLLMBackendError, match="unreachable"):
        run(MLLMResource(backend="openai", endpoint_url=url, model_name="m", transport_retries=0), [CaptionRequest("x", facts, PNG)])


def test_describe_text(server):
    server.default = {"status": 200, "content": "The liver."}
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
    assert backoff_seconds(0, 0.5, None) == 0.5 and backoff_seconds(3, 0.5, None) == 4.0
    assert backoff_seconds(10, 0.5, None) == 30.0 and backoff_seconds(0, 0.5, "7") == 7.0


def test_structured_output_json_answer_and_fallback_to_text(server):
    facts = marked(ct_liver(), "case-json")
    text, sections = compose_caption(facts, seed="canned")
    server.scripts["case-json"] = [{"status": 200, "content": json.dumps({**sections, "description": text})}]
    [gen] = run(resource(server), [CaptionRequest("j", facts, PNG)])
    fmt = server.bodies[0]["response_format"]
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
    # structured output off: plain text requests
    n = len(server.bodies)
    run(resource(server, structured_output=False), [CaptionRequest("q", facts, PNG)])
    assert "response_format" not in server.bodies[n]
