"""Local image-text-to-text models through transformers (AutoProcessor + AutoModelForImageTextToText).

A model directory is loaded once per process per (path, device, dtype). Prompts go through the
processor's chat template with the request's overlay image, are batched with left padding
(sorted by length to limit padding) and decoded greedily unless a temperature is set.
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import MLLMBackendError, RawOutput

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5")

_CACHE: dict[tuple[str, str, str], LoadedModel] = {}
_LOCK = threading.Lock()


@dataclass
class LoadedModel:
    processor: Any
    model: Any
    device: str
    dtype: str
    model_version: str
    eos_ids: frozenset[int]
    pad_id: int | None


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; anything else as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str):
    """torch dtype for a name (``auto`` -> bfloat16 on GPU, float32 on CPU)."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise MLLMBackendError(f"unknown dtype {dtype!r} (use float32, bfloat16, float16 or auto)")
    return value


def model_version_of(path: str | Path) -> str:
    """Short hash of a model directory's config.json and its weight files' names and sizes."""
    root = Path(path)
    h = hashlib.sha256()
    config = root / "config.json"
    h.update(config.read_bytes() if config.is_file() else b"")
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)):
        h.update(f"{f.relative_to(root)}:{f.stat().st_size}\n".encode())
    return h.hexdigest()[:12]


def _ids(value) -> frozenset[int]:
    if value is None:
        return frozenset()
    if isinstance(value, int):
        return frozenset({value})
    return frozenset(int(v) for v in value)


def load_model(path: str, device: str = "cpu", dtype: str = "float32") -> LoadedModel:
    """Load (once per process) an image-text-to-text model directory."""
    device = resolve_device(device)
    key = (str(Path(path).resolve()), device, dtype)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if not Path(path).is_dir():
            raise MLLMBackendError(f"model_path {path!r} is not a directory (a local Hugging Face model dir is needed)")
        from transformers import AutoModelForImageTextToText, AutoProcessor

        torch_dtype = resolve_dtype(dtype, device)
        try:
            processor = AutoProcessor.from_pretrained(path, local_files_only=True)
            model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch_dtype, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise MLLMBackendError(f"cannot load an image-text-to-text model from {path!r}: {exc}") from exc
        model = model.to(device).eval()
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        gen = getattr(model, "generation_config", None)
        eos = _ids(getattr(gen, "eos_token_id", None)) | _ids(tokenizer.eos_token_id)
        loaded = LoadedModel(processor, model, device, dtype, model_version_of(path), eos, tokenizer.pad_token_id)
        _CACHE[key] = loaded
        return loaded


def chat_text(processor, prompt: str, with_image: bool) -> str:
    """The prompt wrapped by the processor's chat template (one user turn, image first)."""
    content: list[dict] = [{"type": "image"}] if with_image else []
    content.append({"type": "text", "text": prompt})
    messages = [{"role": "user", "content": content}]
    template = getattr(processor, "chat_template", None) or getattr(
        getattr(processor, "tokenizer", None), "chat_template", None
    )
    if not template:
        raise MLLMBackendError("the model's processor has no chat template; add chat_template.jinja to the model dir")
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def decode_image(png: bytes):
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return im.convert("RGB")


def count_generated(row, eos_ids: frozenset[int], pad_id: int | None) -> tuple[int, bool]:
    """``(tokens generated up to and including the first EOS, stopped by EOS)``."""
    values = row.tolist()
    for i, tok in enumerate(values):
        if tok in eos_ids:
            return i + 1, True
    n = len(values)
    while n and pad_id is not None and values[n - 1] == pad_id and pad_id not in eos_ids:
        n -= 1
    return n, False


def plan_batches(prompts: list[str], images: list[bytes | None], batch_size: int) -> list[list[int]]:
    """Index batches: with-image and text-only requests apart, longest prompts first."""
    groups: dict[bool, list[int]] = {True: [], False: []}
    for i, img in enumerate(images):
        groups[img is not None].append(i)
    batches = []
    for members in groups.values():
        members.sort(key=lambda i: -len(prompts[i]))
        batches += [members[k : k + batch_size] for k in range(0, len(members), batch_size)]
    return batches


def generate_batch(
    loaded: LoadedModel,
    prompts: list[str],
    images: list[bytes | None],
    max_new_tokens: int,
    temperature: float,
    seed: int,
) -> list[RawOutput]:
    """One padded batch through ``model.generate`` (all with an image or all without)."""
    import torch

    with_image = images[0] is not None
    texts = [chat_text(loaded.processor, p, with_image) for p in prompts]
    kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
    if with_image:
        kwargs["images"] = [decode_image(b) for b in images]
    inputs = loaded.processor(**kwargs)
    inputs = {k: v.to(loaded.device) if hasattr(v, "to") else v for k, v in inputs.items()}
    if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
        inputs["pixel_values"] = inputs["pixel_values"].to(loaded.model.dtype)
    gen_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0}
    if temperature > 0:
        gen_kwargs["temperature"] = temperature
        torch.manual_seed(seed)
    if loaded.pad_id is not None:
        gen_kwargs["pad_token_id"] = loaded.pad_id
    with torch.inference_mode():
        out = loaded.model.generate(**inputs, **gen_kwargs)
    width = inputs["input_ids"].shape[1]
    new = out[:, width:]
    decoded = loaded.processor.batch_decode(new, skip_special_tokens=True)
    lengths = inputs["attention_mask"].sum(dim=1).tolist() if "attention_mask" in inputs else [width] * len(prompts)
    results = []
    for row, text, n_in in zip(new, decoded, lengths, strict=True):
        n_out, stopped = count_generated(row, loaded.eos_ids, loaded.pad_id)
        results.append(RawOutput(text.strip(), int(n_in), n_out, truncated=not stopped and n_out >= max_new_tokens))
    return results


class TransformersBackend:
    """`generate(prompts, images)` over a local model directory, in batches."""

    name = "transformers"

    def __init__(
        self,
        model_path: str,
        device: str,
        dtype: str,
        batch_size: int,
        max_new_tokens: int,
        temperature: float,
        seed: int = 0,
    ) -> None:
        if not model_path:
            raise MLLMBackendError("backend 'transformers' needs model_path (a local model directory)")
        self.loaded = load_model(model_path, device, dtype)
        self.model = Path(model_path).name
        self.model_version = self.loaded.model_version
        self.batch_size = max(1, int(batch_size))
        self.max_new_tokens = int(max_new_tokens)
        self.temperature = float(temperature)
        self.seed = int(seed)
        config = getattr(self.loaded.model, "config", None)
        self.settings = {
            "decoding": "sampling" if self.temperature > 0 else "greedy",
            "temperature": self.temperature,
            "max_new_tokens": self.max_new_tokens,
            "batch_size": self.batch_size,
            "padding_side": "left",
            "device": self.loaded.device,
            "dtype": self.loaded.dtype,
            "architecture": (getattr(config, "architectures", None) or [type(self.loaded.model).__name__])[0],
            "model_path": str(model_path),
        }
        if self.temperature > 0:
            self.settings["seed"] = self.seed

    def generate(self, prompts: list[str], images: list[bytes | None]) -> list[RawOutput]:
        results: list[RawOutput | None] = [None] * len(prompts)
        for batch in plan_batches(prompts, images, self.batch_size):
            outs = generate_batch(
                self.loaded,
                [prompts[i] for i in batch],
                [images[i] for i in batch],
                self.max_new_tokens,
                self.temperature,
                self.seed,
            )
            for i, out in zip(batch, outs, strict=True):
                results[i] = out
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise MLLMBackendError(f"no output for prompts {missing[:5]}")
        return results  # type: ignore[return-value]
