"""One real local OpenAI-compatible chat-completions server (HTTP on 127.0.0.1) for every test that
needs a served model, parameterised by behaviour:

- `answer`: a fixed text or ``answer(prompt) -> text`` (a caption writer, a judge, a VQA writer);
- `fail`: answer every request with this HTTP status instead (a refusing or broken server);
- `delay`: seconds before each answer (settable while running);
- `scripts`: ``{marker: [step, ...]}`` — a request whose prompt holds `marker` gets the next step
  (the last one repeats); a step is a dict with ``status`` (200), ``content``, ``finish_reason``
  (``stop``), ``sleep`` (s), ``message`` (the error's words) and ``retry_after`` (s). After a step
  with ``retry_after`` the server refuses that marker's requests until the time is up, as a rate
  limiter does (429 again, counted in `early`), so a client that does not wait cannot get through.

It records what arrived: `bodies`, `raw_digests` (SHA-256 of each body: same digest, same call),
`headers`, `prompts`, `received`, and `max_inflight` (most requests being served at once)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Usage = tuple[int, int]


class ChatServer:
    def __init__(
        self, answer: Callable[[str], str] | str = "", fail: int = 0, delay: float = 0.0, usage: Usage = (10, 10)
    ) -> None:
        self.answer = answer if callable(answer) else (lambda _prompt, text=answer: text)
        self.fail, self.delay, self.usage = fail, delay, usage
        self.scripts: dict[str, list[dict]] = {}
        self.bodies: list[dict] = []
        self.raw_digests: list[str] = []
        self.headers: list[dict] = []
        self.prompts: list[str] = []
        self.received = self.inflight = self.max_inflight = self.early = 0
        self.paths: set[str] = set()
        self.lock = threading.Lock()
        self._closed_until: dict[str, float] = {}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def calls(self) -> int:
        return self.received

    def count(self, marker: str) -> int:
        """Requests whose body mentions `marker`."""
        return sum(marker in json.dumps(b) for b in self.bodies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _step(self, prompt: str) -> dict:
        """What to answer (called under the lock)."""
        for marker, steps in self.scripts.items():
            if marker not in prompt:
                continue
            wait = self._closed_until.get(marker, 0.0) - time.monotonic()
            if wait > 0:
                self.early += 1
                return {"status": 429, "retry_after": wait, "message": "too early"}
            step = steps.pop(0) if len(steps) > 1 else steps[0]
            if "retry_after" in step:
                self._closed_until[marker] = time.monotonic() + float(step["retry_after"])
            return step
        if self.fail:
            return {"status": self.fail, "sleep": self.delay}
        return {"status": 200, "content": self.answer(prompt), "sleep": self.delay}

    def _payload(self, body: dict, step: dict) -> dict:
        status = step.get("status", 200)
        if status != 200:
            return {"error": {"message": step.get("message", f"scripted {status}"), "code": status}}
        return {
            "id": "cmpl-test",
            "model": body.get("model", ""),
            "system_fingerprint": "fp_test",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": step.get("content", "")},
                    "finish_reason": step.get("finish_reason", "stop"),
                }
            ],
            "usage": {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1], "total_tokens": sum(self.usage)},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real server

            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = json.loads(raw)
                prompt = next((p["text"] for p in body["messages"][-1]["content"] if p.get("type") == "text"), "")
                with server.lock:
                    server.received += 1
                    server.bodies.append(body)
                    server.raw_digests.append(hashlib.sha256(raw).hexdigest())
                    server.headers.append(dict(self.headers))
                    server.prompts.append(prompt)
                    server.paths.add(self.path)
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                    step = server._step(prompt)
                try:
                    time.sleep(step.get("sleep", 0.0))
                    self._send(step, json.dumps(server._payload(body, step)).encode())
                finally:
                    with server.lock:
                        server.inflight -= 1

            def _send(self, step: dict, data: bytes) -> None:
                try:
                    self.send_response(step.get("status", 200))
                    if "retry_after" in step:
                        self.send_header("Retry-After", f"{float(step['retry_after']):g}")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

        return Handler
