"""The same caption_batches asset writes captions through each MLLM backend; switching backend
is configuration only (environment read by the code location), as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from chat_servers import ChatServer

REPO = Path(__file__).resolve().parents[1]
SOURCE = "torchxrayvision_cxr"

ANSWER = """Modality: This is a chest X-ray (radiograph).
Organs: The chest with both lungs is shown.
ROI: The region of interest lies in the chest.
Texture: Lung fields appear radiolucent with fine markings.
Relations: The region lies within the thorax.
Description: This chest X-ray (radiograph) shows the chest and lungs; the lung fields appear radiolucent with fine markings."""


def run_demo(tmp_path: Path, extra_env: dict[str, str], home: Path | None = None, storage: Path | None = None) -> pl.DataFrame:
    home = home or tmp_path / "home"
    env = {**os.environ, "MEDTRINITY_HOME": str(home), "DAGSTER_HOME": str(tmp_path / "dh"), **extra_env}
    proc = subprocess.run(
        [sys.executable, "-m", "medtrinity_assets.cli", "demo", "--sources", SOURCE, "--skip-knowledge"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    files = sorted(((storage or home / "dataset") / "manifests" / "caption_batches" / SOURCE).glob("*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files])


@pytest.fixture
def chat_server():
    server = ChatServer(ANSWER, usage=(321, 64))
    yield server.url, server.bodies
    server.close()


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
    env = {"MEDTRINITY_MLLM_BACKEND": "transformers", "MEDTRINITY_MLLM_MODEL": str(model_dir), "MEDTRINITY_MLLM_MAX_NEW_TOKENS": "8"}
    captions = run_demo(tmp_path, env)
    assert captions.height >= 6 and (captions["backend"] == "transformers").all()
    assert captions["model_version"].n_unique() == 1 and captions["model_version"][0]
    settings = json.loads(captions["generation_settings"][0])
    assert settings.get("do_sample") is False or settings.get("temperature") == 0.0
    # a random model writes nonsense: every record is kept and flagged, none dropped
    assert (captions["problems"].list.len() > 0).all()
    # cut at 8 tokens, asked once more with 16 (the environment's limit reached the resource), then flagged
    assert captions["problems"].list.contains("truncated").all() and (captions["tokens_out"] <= 24).all()


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the demo and everything it started (webserver, code server, run workers)."""
    import psutil

    root = psutil.Process(proc.pid)
    for p in [*root.children(recursive=True), root]:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=30)


def cached_calls(storage_root: Path) -> int:
    return len(list((storage_root / "cache" / "mllm_calls").rglob("*.json")))


def test_killed_run_pays_only_for_the_lost_batch_and_a_rerun_makes_no_calls(tmp_path):
    concurrency = 2
    server = ChatServer(ANSWER, delay=0.25, usage=(321, 64))
    storage = tmp_path / "storage"
    env = {
        **os.environ,
        "MEDTRINITY_HOME": str(tmp_path / "home"),
        "MEDTRINITY_STORAGE": str(storage),
        "DAGSTER_HOME": str(tmp_path / "dh1"),
        "MEDTRINITY_MLLM_BACKEND": "openai",
        "MEDTRINITY_MLLM_ENDPOINT": server.url,
        "MEDTRINITY_MLLM_MODEL": "served-medical-vlm",
        "MEDTRINITY_MLLM_CONCURRENCY": str(concurrency),
    }
    cmd = [sys.executable, "-m", "medtrinity_assets.cli", "demo", "--sources", SOURCE, "--skip-knowledge"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while server.received < 2 * concurrency + 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the demo ended before the kill"
    kill_tree(proc)  # kill -9 mid-shard: a wave of requests is in flight
    time.sleep(1.0)
    paid_first = server.received
    cached = cached_calls(storage)
    assert 0 < cached < paid_first  # finished waves were checkpointed, the in-flight ones were not

    # the rerun (same instance) finishes the job and pays only for what was not checkpointed
    server.delay = 0.0
    captions = run_demo(tmp_path, {**env, "MEDTRINITY_HOME": str(tmp_path / "home")}, home=tmp_path / "home", storage=storage)
    paid_second = server.received - paid_first
    assert captions.height >= 6 and paid_second > 0
    first, second = set(server.raw_digests[:paid_first]), set(server.raw_digests[paid_first:])
    shards = len(list((storage / "manifests" / "caption_batches" / SOURCE).glob("*.parquet")))
    # asked again: exactly the calls of run 1 that were not checkpointed, at most one wave per shard run in flight
    assert len(first & second) == len(first) - cached <= concurrency * shards
    assert cached_calls(storage) == len(first | second)  # every answered call is in the cache once
    assert (captions["model_calls"] < captions["attempts"]).any()  # records finished with answers checkpointed before the kill

    # a rerun from scratch (a fresh Dagster instance) with nothing changed makes 0 model calls
    before = server.received
    again = run_demo(tmp_path, {**env, "DAGSTER_HOME": str(tmp_path / "dh2")}, home=tmp_path / "home", storage=storage)
    assert server.received == before
    assert again["cache_hit"].all() and (again["model_calls"] == 0).all()
    key = ["roi_id", "caption", "prompt_hash", "tokens_out"]
    assert again.select(key).sort("roi_id").equals(captions.select(key).sort("roi_id"))
    server.close()
