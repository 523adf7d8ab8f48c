"""The anatomy corpus: Uberon terms (uberon_terms.jsonl.gz, see data/knowledge/anatomy/README.txt).

One document per term that has a definition: the definition is the text (citation brackets
removed), the term id and its UMLS/MeSH/NCIt xrefs are the concept ids, synonyms are metadata.
Terms without a definition are not documents (they stay in the concept vocabulary).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medtrinity_assets.knowledge.concepts import unique_concepts
from medtrinity_assets.knowledge.documents import Document

UBERON_TERMS_FILE = "uberon_terms.jsonl.gz"
_BRACKETS = re.compile(r"\s*\[[^\]]*\]")


def terms_file(path: Path) -> Path:
    return path / UBERON_TERMS_FILE if path.is_dir() else path


def clean_definition(text: str) -> str:
    """Citation brackets ('[FMA]', '[wikipedia]') removed, whitespace collapsed, first letter upper case,
    ends with a full stop."""
    text = " ".join(_BRACKETS.sub("", text).split()).rstrip(" .")
    return f"{text[0].upper()}{text[1:]}." if text else ""


def iter_uberon_terms(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    from medtrinity_assets.knowledge.corpus_io import iter_json_lines

    yield from iter_json_lines(terms_file(path))


def iter_uberon(path: Path, skipped: Any = None) -> Iterator[Document]:
    """Defined Uberon terms as documents; `skipped` (a Counter) counts terms left out, by reason."""
    from medtrinity_assets.knowledge.corpus_io import scalar_metadata

    for _, rec in iter_uberon_terms(path):
        definition = clean_definition(str(rec.get("definition") or ""))
        if not definition:
            if skipped is not None:
                skipped["empty_text"] += 1
            continue
        synonyms = [s for s in rec.get("synonyms") or [] if s]
        yield Document(
            doc_id=str(rec["id"]),
            title=str(rec["name"]),
            text=definition,
            concept_ids=unique_concepts([str(rec["id"]), *(rec.get("xrefs") or [])]),
            metadata=scalar_metadata({"synonyms": synonyms, "has_definition": True, "kind": "anatomy"}),
        )
