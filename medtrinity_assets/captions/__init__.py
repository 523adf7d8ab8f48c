"""Captions: coarse caption, versioned prompt, section parsing, grounded composer, checks."""

from .checks import CaptionCheckConfig, check_caption
from .coarse import coarse_caption
from .composer import COMPOSER_VERSION, compose_caption
from .prompt import PROMPT_VERSION, build_prompt, prompt_hash, retry_prompt
from .sections import SECTION_KEYS, format_sections, parse_output, parse_sections

__all__ = [
    "COMPOSER_VERSION",
    "PROMPT_VERSION",
    "SECTION_KEYS",
    "CaptionCheckConfig",
    "build_prompt",
    "check_caption",
    "coarse_caption",
    "compose_caption",
    "format_sections",
    "parse_output",
    "parse_sections",
    "prompt_hash",
    "retry_prompt",
]
