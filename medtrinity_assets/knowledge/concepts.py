"""Concept identifiers (DOID, UMLS CUI, MeSH, NCIt) in one normalised spelling.

Chunks carry them as ``PREFIX:local`` strings; chromadb metadata keeps them as one
``|``-delimited string (metadata values must be scalars), the keyword index in a lookup table.
Matching is case-insensitive (`concept_key`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CONCEPT_DELIMITER = "|"

_PREFIX_ALIASES = {
    "DOID": "DOID",
    "UMLS": "UMLS",
    "UMLS_CUI": "UMLS",
    "CUI": "UMLS",
    "MESH": "MESH",
    "MSH": "MESH",
    "NCI": "NCI",
    "NCIT": "NCI",
}
_BARE_CUI = re.compile(r"^C\d{7}$")


def normalise_concept_id(raw: str) -> str:
    """'UMLS_CUI:C0029581' -> 'UMLS:C0029581'; bare 'C0751606' -> 'UMLS:C0751606'; '' -> ''."""
    value = " ".join(str(raw).split())
    if not value:
        return ""
    if _BARE_CUI.match(value):
        return f"UMLS:{value}"
    prefix, sep, local = value.partition(":")
    if not sep or not local.strip():
        return value
    prefix = prefix.strip().upper()
    return f"{_PREFIX_ALIASES.get(prefix, prefix)}:{local.strip()}"


def concept_key(concept_id: str) -> str:
    """Case-insensitive matching key of a concept id (after normalisation)."""
    return normalise_concept_id(concept_id).casefold()


def unique_concepts(values: Iterable[str]) -> tuple[str, ...]:
    """Normalised, de-duplicated (case-insensitively), order kept, empties dropped."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in values:
        cid = normalise_concept_id(raw)
        key = cid.casefold()
        if cid and key not in seen:
            seen.add(key)
            out.append(cid)
    return tuple(out)


def join_concepts(concept_ids: Iterable[str]) -> str:
    """'|DOID:1|UMLS:C1|' (delimiters at both ends so a substring test finds whole ids)."""
    ids = [c.replace(CONCEPT_DELIMITER, "/") for c in concept_ids]
    return f"{CONCEPT_DELIMITER}{CONCEPT_DELIMITER.join(ids)}{CONCEPT_DELIMITER}" if ids else ""


def split_concepts(joined: str) -> tuple[str, ...]:
    return tuple(c for c in joined.split(CONCEPT_DELIMITER) if c)
