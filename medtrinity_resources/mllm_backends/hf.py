"""Local image-text-to-text models through transformers (AutoProcessor + AutoModelForImageTextToText).

A model directory is loaded once per process per (path, device, dtype). Prompts go through the
processor's chat template with the request's overlay image, are batched with left padding
(sorted by length to limit padding) and decoded greedily unless a temperature is set.
"""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import MLLMBackendError, RawOutput
from .registry import register

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5")

_CACHE: dict[tuple, LoadedModel] = {}
CONVERT_HINT = (
    "{path!r} is an original-format LLaVA checkpoint (LlavaLlamaForCausalLM with mm_vision_tower, e.g. "
    "LLaVA-Med or the MedTrinity captioner); transformers reads the llava-hf format. Convert it once with "
    "transformers' script src/transformers/models/llava/convert_llava_weights_to_hf.py "
    "(python convert_llava_weights_to_hf.py --text_model_id <base LLM> --vision_model_id "
    "openai/clip-vit-large-patch14-336 --old_state_dict_id <the checkpoint's Hub id> --output_hub_path <your Hub repo>; "
    "it pushes the llava-hf model there), download the converted repo and point model_path at it; see README 'Model backends'."
)
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
    batch_sizes: list[int] = field(default_factory=list)  # prompts per generate call, in order (benches, tests)


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


def check_format(path: str) -> None:
    """Clear error for checkpoints transformers cannot read as image-text-to-text models."""
    import json

    config = Path(path) / "config.json"
    if not config.is_file():
        raise MLLMBackendError(f"model_path {path!r} has no config.json (a Hugging Face model dir is needed)")
    data = json.loads(config.read_text())
    if "mm_vision_tower" in data or any("LlavaLlama" in a or "LlavaMistral" in a for a in data.get("architectures") or []):
        raise MLLMBackendError(CONVERT_HINT.format(path=path))


def load_model(
    path: str, device: str = "cpu", dtype: str = "auto", trust_remote_code: bool = False, device_map: str = ""
) -> LoadedModel:
    """Load (once per process) an image-text-to-text model directory."""
    device = resolve_device(device)
    key = (str(Path(path).resolve()), device, dtype, trust_remote_code, device_map)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if not Path(path).is_dir():
            raise MLLMBackendError(f"model_path {path!r} is not a directory (a local Hugging Face model dir is needed)")
        check_format(path)
        from transformers import AutoModelForImageTextToText, AutoProcessor

        torch_dtype = resolve_dtype(dtype, device)
        remote = {"trust_remote_code": True} if trust_remote_code else {}
        placement = {"device_map": device_map} if device_map else {}
        try:
            processor = AutoProcessor.from_pretrained(path, local_files_only=True, **remote)
            model = AutoModelForImageTextToText.from_pretrained(
                path, dtype=torch_dtype, local_files_only=True, **remote, **placement
            )
        except (OSError, ValueError, KeyError) as exc:
            hint = "" if trust_remote_code else " (if the checkpoint ships its own model code, set trust_remote_code)"
            raise MLLMBackendError(f"cannot load an image-text-to-text model from {path!r}: {exc}{hint}") from exc
        model = (model if device_map else model.to(device)).eval()
        device = str(next(model.parameters()).device) if device_map else device
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        gen = getattr(model, "generation_config", None)
        eos = _ids(getattr(gen, "eos_token_id", None)) | _ids(tokenizer.eos_token_id)
        loaded = LoadedModel(processor, model, device, str(torch_dtype).removeprefix("torch."), model_version_of(path), eos, tokenizer.pad_token_id)
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
        kwargs["images"] = [[decode_image(b)] for b in images]  # one image per sample (Gemma 3 pairs them by nesting)
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
    loaded.batch_sizes.append(len(prompts))
    width = inputs["input_ids"].shape[1]
    new = out[:, width:]
    decoded = loaded.processor.batch_decode(new, skip_special_tokens=True)
    lengths = inputs["attention_mask"].sum(dim=1).tolist() if "attention_mask" in inputs else [width] * len(prompts)
    results = []
    for row, text, n_in in zip(new, decoded, lengths, strict=True):
        n_out, stopped = count_generated(row, loaded.eos_ids, loaded.pad_id)
        results.append(RawOutput(text.strip(), int(n_in), n_out, truncated=not stopped and n_out >= max_new_tokens))
    return results


@register("transformers")
class TransformersBackend:
    """`generate(prompts, images, max_new_tokens)` over a local model directory, in batches."""

    @staticmethod
    def identity(cfg) -> dict:
        if not cfg.model_path:
            raise MLLMBackendError("backend 'transformers' needs model_path (a local model directory)")
        if not Path(cfg.model_path).is_dir():
            raise MLLMBackendError(f"model_path {cfg.model_path!r} is not a directory (a local Hugging Face model dir is needed)")
        device = resolve_device(cfg.device)
        settings = {
            "decoding": "sampling" if cfg.temperature > 0 else "greedy",
            "temperature": float(cfg.temperature),
            "dtype": str(resolve_dtype(cfg.dtype, device)).removeprefix("torch."),
        }
        if cfg.temperature > 0:
            settings["seed"] = int(cfg.seed)
        return {
            "backend": "transformers",
            "model": Path(cfg.model_path).name,
            "revision": cfg.model_revision or model_version_of(cfg.model_path),
            "settings": settings,
        }

    def __init__(self, cfg) -> None:
        ident = self.identity(cfg)
        self.loaded = load_model(cfg.model_path, cfg.device, cfg.dtype, cfg.trust_remote_code, cfg.device_map)
        self.model = ident["model"]
        self.model_version = ident["revision"]
        self.batch_size = max(1, int(cfg.batch_size))
        self.temperature = float(cfg.temperature)
        self.seed = int(cfg.seed)
        config = getattr(self.loaded.model, "config", None)
        self.settings = {
            **ident["settings"],
            "batch_size": self.batch_size,
            "padding_side": "left",
            "device": self.loaded.device,
            "architecture": (getattr(config, "architectures", None) or [type(self.loaded.model).__name__])[0],
        }

    def generate(
        self, prompts: list[str], images: list[bytes | None], max_new_tokens: int, json_schema: dict | None = None
    ) -> list[RawOutput]:
        """Plain text answers (`json_schema` is for constrained servers; the caller parses text)."""
        results: list[RawOutput | None] = [None] * len(prompts)
        for batch in plan_batches(prompts, images, self.batch_size):
            outs = generate_batch(
                self.loaded,
                [prompts[i] for i in batch],
                [images[i] for i in batch],
                max_new_tokens,
                self.temperature,
                self.seed,
            )
            for i, out in zip(batch, outs, strict=True):
                out.model_version = self.model_version
                results[i] = out
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise MLLMBackendError(f"no output for prompts {missing[:5]}")
        return results  # type: ignore[return-value]
