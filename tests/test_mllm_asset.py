"""The same caption_batches asset writes captions through each MLLM backend; switching backend
is configuration only (environment read by the code location), as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE = "torchxrayvision_cxr"

ANSWER = """Modality: This is a chest X-ray (radiograph).
Organs: The chest with both lungs is shown.
ROI: The region of interest lies in the chest.
Texture: Lung fields appear radiolucent with fine markings.
Relations: The region lies within the thorax.
Description: This chest X-ray (radiograph) shows the chest and lungs; the lung fields appear radiolucent with fine markings."""


def run_demo(tmp_path: Path, extra_env: dict[str, str]) -> pl.DataFrame:
    home = tmp_path / "home"
    env = {**os.environ, "MEDTRINITY_HOME": str(home), "DAGSTER_HOME": str(tmp_path / "dh"), **extra_env}
    proc = subprocess.run(
        [sys.executable, "-m", "medtrinity_assets.cli", "demo", "--sources", SOURCE, "--skip-knowledge"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    files = sorted((home / "dataset" / "manifests" / "caption_batches" / SOURCE).glob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files])


@pytest.fixture
def chat_server():
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            bodies.append(body)
            payload = {
                "id": "cmpl-test",
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 321, "completion_tokens": 64, "total_tokens": 385},
            }
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", bodies
    server.shutdown()


def test_openai_compatible_backend_through_the_asset(tmp_path, chat_server):
    url, bodies = chat_server
    captions = run_demo(tmp_path, {"MEDTRINITY_MLLM_BACKEND": "openai", "MEDTRINITY_MLLM_ENDPOINT": url, "MEDTRINITY_MLLM_MODEL": "served-medical-vlm"})
    assert captions.height >= 6 and (captions["backend"] == "openai").all()
    assert (captions["model"] == "served-medical-vlm").all()
    assert (captions["tokens_out"] >= 64).all() and (captions["tokens_in"] >= 321).all()
    # every record names the rendered prompt it was written from (identical facts give identical prompts)
    assert captions["prompt_hash"].str.contains(r"^[0-9a-f]{16}$").all() and captions["prompt_hash"].n_unique() > 1
    # the overlay (ROI marked) is what the model sees
    content = bodies[0]["messages"][-1]["content"]
    assert any(part.get("type") == "image_url" and part["image_url"]["url"].startswith("data:image/png;base64,") for part in content)
    assert captions["section_texture"].str.contains("radiolucent").all()


def test_transformers_backend_through_the_asset(tmp_path):
    from tiny_llava import build_tiny_llava

    model_dir = build_tiny_llava(tmp_path / "tiny_llava")
    captions = run_demo(tmp_path, {"MEDTRINITY_MLLM_BACKEND": "transformers", "MEDTRINITY_MLLM_MODEL": str(model_dir)})
    assert captions.height >= 6 and (captions["backend"] == "transformers").all()
    assert captions["model_version"].n_unique() == 1 and captions["model_version"][0]
    settings = json.loads(captions["generation_settings"][0])
    assert settings.get("do_sample") is False or settings.get("temperature") == 0.0
    # a random model writes nonsense: every record is kept and flagged, none dropped
    assert (captions["problems"].list.len() > 0).all()
