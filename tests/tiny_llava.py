"""A tiny randomly initialised LLaVA-1.5 (llava-hf format) model directory, built locally (no download).

For offline smoke tests and benchmarks of the transformers backend: a CLIP vision tower and a Llama
text model of toy sizes (the "llava" row of `tiny_vlms.FAMILIES`), loadable by AutoProcessor /
AutoModelForImageTextToText like any Hugging Face model directory. Its answers are random tokens.
"""

from __future__ import annotations

from pathlib import Path

from tiny_vlms import FAMILIES


def build_tiny_llava(
    out_dir: str | Path, *, hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2,
    image_size: int = 32, patch_size: int = 16, seed: int = 0,
) -> Path:
    """Write a random LLaVA model directory to `out_dir` and return its path."""
    return FAMILIES["llava"].build(
        out_dir, seed, hidden=hidden_size, layers=num_layers, heads=num_heads, image=image_size, patch=patch_size
    )
