"""The five labelled sections of a multigranular description, and reading them back from text.

A model is asked (see `prompt.build_prompt`) to answer with

    Modality: ...
    Organs and tissues: ...
    Region of interest: ...
    Colour and texture: ...
    Relationships: ...
    Description: <the integrated description>

`parse_output` reads that back, tolerating markdown (``**Modality:**``, ``## Modality``),
numbering (``1.``, ``2)``, ``a.``), bullets, other capitalisation, header aliases
(``ROI location``, ``Texture/colour``, ``Spatial relations``...) and missing sections.
"""

from __future__ import annotations

import re

from .vocab import normalise_dashes

SECTION_KEYS: tuple[str, ...] = ("modality", "organs", "roi", "texture", "relations")

#: The header the prompt asks for, per section (plus the integrated description).
SECTION_TITLES: dict[str, str] = {
    "modality": "Modality",
    "organs": "Organs and tissues",
    "roi": "Region of interest",
    "texture": "Colour and texture",
    "relations": "Relationships",
    "description": "Description",
}

DESCRIPTION_KEY = "description"

# header text (lower-case, markdown stripped) -> key; first match wins
_ALIASES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (key, re.compile(pattern))
    for key, pattern in (
        ("modality", r"^(?:image |imaging )?modality(?: of the image)?$|^image type$"),
        (
            "organs",
            r"^(?:detected |visible )?(?:organs?|tissues?|anatomy|anatomical structures?|structures?)"
            r"(?:\s*(?:and|/|&|,)\s*(?:organs?|tissues?|structures?))?(?: detected| visible| present)?$",
        ),
        (
            "roi",
            r"^(?:roi|region of interest|regions of interest|lesion|finding|findings|abnormality|location)"
            r"(?:\s*(?:location|description|position|and description|location and description|"
            r"location and appearance|appearance))*$|^(?:roi|lesion) (?:location|position)",
        ),
        (
            "texture",
            r"^(?:disease[- ]related )?(?:colou?r|texture|appearance|colou?r and texture|texture and colou?r|"
            r"colou?r/texture|texture/colou?r|colou?r ?& ?texture|texture ?& ?colou?r)(?: features)?$",
        ),
        (
            "relations",
            r"^(?:roi[- ]region |spatial |anatomical )?(?:relation|relations|relationship|relationships)"
            r"(?: to (?:other|surrounding) (?:regions|structures))?$|^(?:relation|relationship)s? with",
        ),
        ("description", r"^(?:integrated |final |overall |combined |full |coherent )?description$|^summary$"),
    )
)

_HEADER = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:[-*\u2022]\s+)?(?:\*\*|__)?\s*(?:\(?(?:\d{1,2}|[a-e])[.)]\s*)?(?:\*\*|__)?\s*"
    r"(?P<title>[A-Za-z][A-Za-z /&()'-]{0,60}?)\s*(?:\*\*|__)?\s*"
    r"(?P<sep>:|\s-\s|$)\s*(?:\*\*|__)?\s*(?P<rest>.*)$"
)


def _header_key(title: str) -> str | None:
    text = re.sub(r"\s*\([^)]*\)\s*", " ", title.lower()).strip(" -")
    text = re.sub(r"\s+", " ", text)
    for key, pattern in _ALIASES:
        if pattern.search(text):
            return key
    return None


_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")


def _clean(text: str) -> str:
    """One line: markdown emphasis dropped, list items joined with ``; ``."""
    lines = [ln for ln in re.sub(r"(\*\*|__)", "", text).splitlines() if ln.strip()]
    if len(lines) > 1 and all(_BULLET.match(ln) for ln in lines):
        return "; ".join(_BULLET.sub("", ln).strip().rstrip(";,") for ln in lines)
    lines = [_BULLET.sub("", ln) if ln.lstrip().startswith(("-", "*", "\u2022")) else ln for ln in lines]
    return re.sub(r"\s+", " ", " ".join(lines)).strip()


def split_blocks(text: str) -> tuple[str, dict[str, str]]:
    """``(text outside any recognised section, {key: content})`` for section keys and ``description``."""
    blocks: dict[str, list[str]] = {}
    preamble: list[str] = []
    current: str | None = None
    for line in normalise_dashes(text or "").splitlines():
        match = _HEADER.match(line)
        key = _header_key(match.group("title")) if match else None
        if match and key and (match.group("sep") or not match.group("rest")):
            current = key
            blocks.setdefault(key, [])
            if match.group("rest").strip():
                blocks[key].append(match.group("rest"))
            continue
        (blocks[current] if current else preamble).append(line)
    return _clean("\n".join(preamble)), {k: _clean("\n".join(v)) for k, v in blocks.items()}


def parse_sections(text: str) -> dict[str, str]:
    """The five sections of a model answer, keyed by `SECTION_KEYS` (``""`` where missing)."""
    _, blocks = split_blocks(text)
    return {key: blocks.get(key, "") for key in SECTION_KEYS}


def parse_output(text: str) -> tuple[str, dict[str, str]]:
    """``(integrated description, sections)`` of a model answer.

    The description is the ``Description:`` block; without one, the text outside the sections
    (if any), else the five sections joined in order. ``description_found`` tells which.
    """
    preamble, blocks = split_blocks(text)
    sections = {key: blocks.get(key, "") for key in SECTION_KEYS}
    description = blocks.get(DESCRIPTION_KEY, "")
    if not description:
        description = preamble if not any(sections.values()) or len(preamble.split()) >= 20 else ""
    if not description:
        description = " ".join(v for v in sections.values() if v)
    return description, sections


def description_found(text: str) -> bool:
    """Whether a model answer has an explicit ``Description:`` block."""
    return bool(split_blocks(text)[1].get(DESCRIPTION_KEY))


def format_sections(sections: dict[str, str], description: str) -> str:
    """The answer format the prompt asks for (used for canned answers and round-trips)."""
    lines = [f"{SECTION_TITLES[key]}: {sections.get(key, '')}" for key in SECTION_KEYS]
    lines.append(f"{SECTION_TITLES[DESCRIPTION_KEY]}: {description}")
    return "\n".join(lines)
