"""Tiny randomly initialised models of real VLM families, built locally from each family's own
config, model and processor classes (no download): for batch tests of the transformers backend.

One builder (`build_family`) does what every family shares: a byte-level BPE tokenizer trained on
a few sentences with the family's special tokens, a small text model config, a seeded random
model, generation settings, and `save_pretrained` of model and processor, so AutoProcessor and
AutoModelForImageTextToText load the directory like any Hugging Face model. Each family is one
row of `FAMILIES`: its special tokens, chat template, and the two functions that make its config
and its processor. Answers are random tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CORPUS = (
    "Modality: CT. Organs and tissues: liver, spleen, aorta. Region of interest: the liver lies in the upper "
    "left part of the image. Colour and texture: attenuation, signal intensity, opacity, echogenicity. "
    "Relationships: the liver borders the spleen and lies above the aorta. Description: This computed "
    "tomography image of the abdomen shows the liver. X-ray radiograph of the chest and lungs. MRI of the "
    "brain. Microscopy of cell nuclei. You are an expert in medical imaging. Answer these questions.",
)


def build_tokenizer(special: dict[str, str], corpus: tuple[str, ...] = DEFAULT_CORPUS, vocab_size: int = 400):
    """Byte-level BPE trained on `corpus` with bos/eos/pad and the family's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>", *special.values()],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(corpus) * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        extra_special_tokens=special,
    )


@dataclass(frozen=True)
class Size:
    hidden: int = 32
    layers: int = 2
    heads: int = 2
    image: int = 32
    patch: int = 8


def text_config(tok, s: Size, **extra) -> dict:
    """The text model's config: toy sizes, the tokenizer's vocabulary and special ids."""
    return {
        "vocab_size": len(tok), "hidden_size": s.hidden, "intermediate_size": 2 * s.hidden, "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads, "num_key_value_heads": 1, "max_position_embeddings": 8192,
        "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id, **extra,
    }


def vision_config(s: Size, **extra) -> dict:
    return {"hidden_size": s.hidden, "intermediate_size": 2 * s.hidden, "num_hidden_layers": s.layers, "num_attention_heads": s.heads, **extra}


def token_ids(tok, **names: str) -> dict[str, int]:
    return {key: tok.convert_tokens_to_ids(token) for key, token in names.items()}


@dataclass(frozen=True)
class Family:
    architecture: str  # transformers model class (and the "architectures" entry of config.json)
    special: dict[str, str]
    template: str
    config: Callable[[Any, Size], Any]  # (tokenizer, size) -> the family's config
    processor: Callable[[Any, Size, str], Any]  # (tokenizer, size, chat template) -> the family's processor
    size: Size = field(default_factory=Size)

    def build(self, out_dir: str | Path, seed: int = 0, **size: int) -> Path:
        return build_family(self, out_dir, seed, **size)


def build_family(family: Family, out_dir: str | Path, seed: int = 0, **size: int) -> Path:
    """Write a random model directory of `family` to `out_dir` and return its path."""
    import torch
    import transformers

    out = Path(out_dir)
    s = Size(**{**family.size.__dict__, **size})
    tok = build_tokenizer(family.special)
    torch.manual_seed(seed)
    model = getattr(transformers, family.architecture)(family.config(tok, s)).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out)
    family.processor(tok, s, family.template).save_pretrained(out)
    return out


def _template(turn: str, image: str, end: str, assistant: str, prefix: str = "") -> str:
    """A chat template: `turn` opens a message (may use the role), images become `image`."""
    return (
        f"{prefix}{{% for message in messages %}}{turn}"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
        f"{{% if part['type'] == 'image' %}}{image}{{% elif part['type'] == 'text' %}}{{{{ part['text'] }}}}{{% endif %}}"
        f"{{% endfor %}}{{% endif %}}{end}{{% endfor %}}{{% if add_generation_prompt %}}{assistant}{{% endif %}}"
    )


# -- LLaVA-1.5 (llava-hf): CLIP tower, Llama text model -----------------------------------------------------

def _llava_config(tok, s: Size):
    from transformers import LlavaConfig

    return LlavaConfig(
        vision_config={"model_type": "clip_vision_model", **vision_config(s, image_size=s.image, patch_size=s.patch, projection_dim=s.hidden)},
        text_config={"model_type": "llama", **text_config(tok, s, num_key_value_heads=s.heads)},
        image_token_index=tok.convert_tokens_to_ids("<image>"), image_seq_length=(s.image // s.patch) ** 2,
        vision_feature_layer=-1, vision_feature_select_strategy="default",
    )


def _llava_processor(tok, s: Size, template: str):
    from transformers import CLIPImageProcessor, LlavaProcessor

    images = CLIPImageProcessor(size={"shortest_edge": s.image}, crop_size={"height": s.image, "width": s.image})
    return LlavaProcessor(
        image_processor=images, tokenizer=tok, patch_size=s.patch, vision_feature_select_strategy="default",
        num_additional_image_tokens=1, chat_template=template,  # the CLS token the "default" strategy drops
    )


# -- Gemma 3 (MedGemma's architecture): SigLIP tower pooled to 4 soft tokens per image -----------------------

def _gemma3_config(tok, s: Size):
    from transformers import Gemma3Config

    return Gemma3Config(
        text_config={**text_config(tok, s), "head_dim": 16, "sliding_window": 512},
        vision_config=vision_config(s, image_size=s.image, patch_size=s.patch), mm_tokens_per_image=4,
        **token_ids(tok, boi_token_index="<start_of_image>", eoi_token_index="<end_of_image>", image_token_index="<image_soft_token>"),
    )


def _gemma3_processor(tok, s: Size, template: str):
    from transformers import Gemma3ImageProcessor, Gemma3Processor

    images = Gemma3ImageProcessor(size={"height": s.image, "width": s.image})
    return Gemma3Processor(image_processor=images, tokenizer=tok, chat_template=template, image_seq_length=4)


# -- Qwen2.5-VL (windowed ViT, 2x2 merge, M-RoPE) and Qwen3-VL (learned positions, DeepStack) ------------------

QWEN_SPECIAL = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>", "im_start": "<|im_start|>", "im_end": "<|im_end|>"}
QWEN_IDS = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
            "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"}


def _qwen_config(config_class: str, rope: dict, vision: dict, head_dim: dict):
    def make(tok, s: Size):
        import transformers

        rope_parameters = {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0, **rope}
        return getattr(transformers, config_class)(
            text_config=text_config(tok, s, rope_parameters=rope_parameters, **head_dim),
            vision_config={"depth": s.layers, "hidden_size": s.hidden, "intermediate_size": 2 * s.hidden, "num_heads": s.heads,
                           "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": s.hidden, **vision},
            **token_ids(tok, **QWEN_IDS),
        )

    return make


def _qwen_processor(processor_class: str, video_module: str, video_class: str, patch: int):
    def make(tok, s: Size, template: str):
        import importlib

        import transformers
        from transformers import Qwen2VLImageProcessor

        pixels = {"shortest_edge": (4 * patch) ** 2, "longest_edge": (4 * patch) ** 2}
        video = getattr(importlib.import_module(f"transformers.models.{video_module}"), video_class)
        return getattr(transformers, processor_class)(
            image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=patch, merge_size=2, temporal_patch_size=2),
            video_processor=video(size=pixels, patch_size=patch), tokenizer=tok, chat_template=template,
        )

    return make


QWEN_TEMPLATE = _template(
    "<|im_start|>{{ message['role'] }}\n", "<|vision_start|><|image_pad|><|vision_end|>", "<|im_end|>\n", "<|im_start|>assistant\n"
)


# -- Idefics3 / SmolVLM: SigLIP tower, pixel shuffle (scale 2), Llama text model; no image splitting -----------

def _idefics3_config(tok, s: Size):
    from transformers import Idefics3Config

    return Idefics3Config(
        text_config={"model_type": "llama", **text_config(tok, s)},
        vision_config=vision_config(s, image_size=s.image, patch_size=s.patch), scale_factor=2,
        image_token_id=tok.convert_tokens_to_ids("<image>"), pad_token_id=tok.pad_token_id,
    )


def _idefics3_processor(tok, s: Size, template: str):
    from transformers import Idefics3ImageProcessor, Idefics3Processor

    edge = {"longest_edge": s.image}
    images = Idefics3ImageProcessor(do_image_splitting=False, size=edge, max_image_size=edge)
    seq_len = (s.image // s.patch) ** 2 // 4
    return Idefics3Processor(image_processor=images, tokenizer=tok, image_seq_len=seq_len, chat_template=template)


# -- InternVL (Hugging Face format): InternViT, pixel shuffle (0.5), Qwen2 text model; no tiling ---------------

def _internvl_config(tok, s: Size):
    from transformers import InternVLConfig

    return InternVLConfig(
        text_config={"model_type": "qwen2", **text_config(tok, s)},
        vision_config=vision_config(s, image_size=[s.image, s.image], patch_size=[s.patch, s.patch]),
        image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"), image_seq_length=(s.image // s.patch) ** 2 // 4, downsample_ratio=0.5,
    )


def _internvl_processor(tok, s: Size, template: str):
    from transformers import GotOcr2ImageProcessor, InternVLProcessor
    from transformers.models.internvl.video_processing_internvl import InternVLVideoProcessor

    square = {"height": s.image, "width": s.image}
    return InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=square, crop_to_patches=False), video_processor=InternVLVideoProcessor(size=square),
        tokenizer=tok, image_seq_length=(s.image // s.patch) ** 2 // 4, chat_template=template,
    )


FAMILIES: dict[str, Family] = {
    "llava": Family(
        "LlavaForConditionalGeneration", {"image_token": "<image>"},
        _template("{{ message['role'] | upper }}: ", "<image>\n", "\n", "ASSISTANT:"),
        _llava_config, _llava_processor, Size(patch=16),
    ),
    "gemma3": Family(
        "Gemma3ForConditionalGeneration",
        {"boi_token": "<start_of_image>", "image_token": "<image_soft_token>", "eoi_token": "<end_of_image>"},
        _template("<start_of_turn>{{ message['role'] }}\n", "<start_of_image>", "<end_of_turn>\n", "<start_of_turn>model\n", "{{ bos_token }}"),
        _gemma3_config, _gemma3_processor,
    ),
    "qwen2_5_vl": Family(
        "Qwen2_5_VLForConditionalGeneration", {**QWEN_SPECIAL, "vision_start": "<|vision_start|>", "vision_end": "<|vision_end|>"},
        QWEN_TEMPLATE,
        _qwen_config("Qwen2_5_VLConfig", {}, {"patch_size": 14, "window_size": 56, "fullatt_block_indexes": [1]}, {}),
        _qwen_processor("Qwen2_5_VLProcessor", "qwen2_vl.video_processing_qwen2_vl", "Qwen2VLVideoProcessor", 14),
    ),
    "qwen3_vl": Family(
        "Qwen3VLForConditionalGeneration", {**QWEN_SPECIAL, "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"},
        QWEN_TEMPLATE,
        _qwen_config("Qwen3VLConfig", {"mrope_interleaved": True}, {"patch_size": 16, "num_position_embeddings": 64, "deepstack_visual_indexes": [1]}, {"head_dim": 16}),
        _qwen_processor("Qwen3VLProcessor", "qwen3_vl.video_processing_qwen3_vl", "Qwen3VLVideoProcessor", 16),
    ),
    "idefics3": Family(
        "Idefics3ForConditionalGeneration",
        {"image_token": "<image>", "fake_image_token": "<fake_token_around_image>", "global_image_token": "<global-img>",
         "end_of_utterance_token": "<end_of_utterance>", "im_start": "<|im_start|>"},
        _template("{{ message['role'] | capitalize }}:", "<image>", "<end_of_utterance>\n", "Assistant:", "<|im_start|>"),
        _idefics3_config, _idefics3_processor,
    ),
    "internvl": Family(
        "InternVLForConditionalGeneration",
        {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
         "video_token": "<video>", "im_start": "<|im_start|>", "im_end": "<|im_end|>"},
        _template("<|im_start|>{{ message['role'] }}\n", "<IMG_CONTEXT>\n", "<|im_end|>\n", "<|im_start|>assistant\n"),
        _internvl_config, _internvl_processor,
    ),
}
