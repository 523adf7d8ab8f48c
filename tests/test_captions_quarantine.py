"""A model's wrong captions are quarantined with every reason, never dropped: real bundled images
through the production stage functions, a real local chat-completions server writing the answers,
MLLMResource with the openai backend, caption_shard and assemble_triplets."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl
import pytest

from demo_records import shard_frames
from medtrinity_assets.schema import RETRIEVED_KNOWLEDGE_SCHEMA, conform
from medtrinity_assets.stages.captions import caption_shard
from medtrinity_assets.stages.triplets import assemble_triplets, quarantine_counts
from medtrinity_resources.mllm import MLLMResource

WRONG_ANSWER = """Modality: Ultrasound
Organs and tissues: peripheral nerve, blood vessels
Region of interest: The structure is delineated in green inside the green square and measures about 24 mm across.
Colour and texture: The structure is darker than the tissue around it.
Relationships: The nerve lies nearby.
Description: This ultrasound image shows a peripheral nerve and blood vessels. The structure is delineated in green inside the green square and measures about 24 mm across. On this T2-weighted MRI, the structure appears dark. The structure is darker than the tissue around it. The structure is darker than the tissue around it. As a medical AI model, I would recommend a review by a specialist."""

EXPECTED = {"ai_self_reference", "forbidden_phrase", "wrong_modality", "unsupported_size", "repetition"}


class ChatServer:
    """A minimal OpenAI-compatible chat-completions server answering every request with `answer`."""

    def __init__(self, answer: str) -> None:
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests += 1
                payload = {
                    "id": "cmpl-1",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                }
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ChatServer(WRONG_ANSWER)
    yield s
    s.close()


def test_wrong_model_captions_are_quarantined_with_every_reason(tmp_path, server):
    images, rois, coarse, storage, licences = shard_frames("usgra_nerve_ultrasound", str(tmp_path))
    assert rois.height > 0
    mllm = MLLMResource(backend="openai", endpoint_url=server.url, model_name="wrong-writer", max_retries=0, max_concurrency=2)
    retrieved = conform([], RETRIEVED_KNOWLEDGE_SCHEMA)
    captions = caption_shard(images, rois, coarse, retrieved, storage, mllm).captions
    assert server.requests == rois.height
    triplets = assemble_triplets(images, rois, coarse, captions, licences)

    # never dropped: one triplet per ROI record, caption text kept as written
    assert triplets.height == rois.height
    assert set(triplets["roi_id"]) == set(rois["roi_id"])
    assert all("T2-weighted MRI" in c for c in triplets["caption"])
    # quarantined with every reason
    assert triplets["quarantined"].all()
    for reasons in triplets["quarantine_reasons"].to_list():
        assert EXPECTED <= set(reasons), reasons
    counts = quarantine_counts(triplets)
    assert all(counts[code] == triplets.height for code in EXPECTED)


def test_quarantine_counts_per_code():
    df = pl.DataFrame(
        {
            "quarantined": [True, True, False],
            "quarantine_reasons": [["refusal", "too_short"], ["refusal"], []],
        }
    )
    assert quarantine_counts(df) == {"refusal": 2, "too_short": 1}
    assert quarantine_counts(df.head(0)) == {}
