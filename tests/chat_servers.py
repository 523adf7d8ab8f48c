"""Real local OpenAI-compatible chat-completions servers for the caption tests (HTTP on 127.0.0.1):
`ChatServer` answers every prompt with a fixed text (a caption writer), `JudgeServer` answers each
judge prompt with `verdict(prompt)`, or with an HTTP error status when `fail` is set."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    def __init__(self, answer: Callable[[str], str] | str, fail: int = 0) -> None:
        self.prompts: list[str] = []
        self.answer = answer if callable(answer) else (lambda _prompt, text=answer: text)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][0]["content"][-1]["text"]
                server.prompts.append(prompt)
                if fail:
                    self.send_response(fail)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                    return
                payload = {
                    "id": "cmpl-1",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": server.answer(prompt)}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                }
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
