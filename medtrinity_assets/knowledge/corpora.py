"""Corpus adapters: one source format -> `Document`s.

Every adapter is a generator ``iter_<name>(path, skipped) -> Iterator[Document]`` that reads local
files only, yields documents in file order with ids that do not depend on how many are read, counts
the records it leaves out in `skipped` (a Counter: reason -> n), and raises `RejectError`
(``corpus_file_missing``, ``bad_corpus_file``, ``bad_corpus_record``) for input it cannot read.
`iter_documents` also skips and counts documents with empty text, HTML markup or a repeated id.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from medtrinity_assets.knowledge.concepts import unique_concepts
from medtrinity_assets.knowledge.config import CorpusConfig
from medtrinity_assets.knowledge.corpus_io import (  # noqa: F401  (re-exported)
    HTML_MARKUP,
    LIST_JOIN,
    RESERVED_METADATA_KEYS,
    SKIP_REASONS,
    clean_text,
    iter_json_lines,
    open_text,
    scalar_metadata,
    short_hash,
)
from medtrinity_assets.knowledge.documents import Document
from medtrinity_assets.knowledge.pubmed_xml import (  # noqa: F401  (re-exported)
    element_text,
    iter_pubmed_xml,
    pubmed_article_document,
    pubmed_xml_files,
)
from medtrinity_assets.records import RejectError

# ---------------------------------------------------------------- Disease Ontology

DO_TERMS_FILE = "doid_terms.jsonl.gz"
DO_XREF_PREFIXES = ("MESH:", "UMLS_CUI:", "NCI:")
DO_SYNONYM_SCOPES = ("EXACT", "RELATED")
DO_MAX_LIST = 6
_GENERIC_ANATOMY = re.compile(
    r"anatomical|anatomy|structure|subdivision|element$|^zone of|organ part|component layer|functional system"
    r"|compound organ|thoracic segment organ|^regional part of|^organ$|^tissue$|^viscus$|^tube$|^sac$|^vessel$"
    r"|^gland$|^sense organ$|heterogeneous tissue|multi-tissue|organism"
)
_GENERIC_SYMPTOM = re.compile(r"symptom$|^sensation perception$|abnormality$")
_GENERIC_INHERITANCE = frozenset(
    {"inheritance pattern", "monogenic inheritance", "autosomal inheritance", "allosomal inheritance"}
)
_OBO_SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+(\w+)')


def parse_obo_terms(path: Path) -> dict[str, dict[str, list[str]]]:
    """DOID -> {'synonyms': [...], 'xrefs': [...]} from the [Term] stanzas of an OBO file."""
    terms: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    in_term = False
    with open_text(path) as fh:
        for raw in fh:
            line = raw.strip()
            if line.startswith("["):
                in_term = line == "[Term]"
                current = None
                continue
            if not in_term or ":" not in line:
                continue
            tag, _, value = line.partition(": ")
            if tag == "id":
                current = terms.setdefault(value.strip(), {"synonyms": [], "xrefs": []})
            elif current is None:
                continue
            elif tag == "synonym":
                match = _OBO_SYNONYM.match(value)
                if match and match.group(2) in DO_SYNONYM_SCOPES:
                    current["synonyms"].append(match.group(1).replace('\\"', '"'))
            elif tag == "xref":
                xref = value.split()[0] if value.split() else ""
                if xref.startswith(DO_XREF_PREFIXES):
                    current["xrefs"].append(xref)
    return terms


def merge_obo_files(paths: Iterable[Path]) -> dict[str, dict[str, list[str]]]:
    merged: dict[str, dict[str, list[str]]] = {}
    for path in paths:
        for doid, info in parse_obo_terms(path).items():
            slot = merged.setdefault(doid, {"synonyms": [], "xrefs": []})
            for key in ("synonyms", "xrefs"):
                slot[key].extend(v for v in info[key] if v not in slot[key])
    return merged


def specific_terms(
    values: Iterable[str], frequency: Counter[str], generic: Callable[[str], bool], limit: int
) -> list[str]:
    """Facet values minus generic ones, rarest (most specific) first, at most `limit`."""
    kept = {v for v in values if v and not generic(v)}
    return sorted(kept, key=lambda v: (frequency[v], v))[:limit]


def disease_ontology_text(
    name: str,
    definition: str,
    synonyms: list[str],
    parents: list[str],
    anatomy: list[str],
    symptoms: list[str],
    inheritance: list[str],
    onset: list[str],
) -> str:
    """'<name>: <definition> Also called: … Is a: … Anatomy: … Symptoms: … Inheritance: … Onset: …'"""
    parts = [f"{name}: {definition}" if definition else f"{name}."]
    for label, values in (
        ("Also called", synonyms),
        ("Is a", parents),
        ("Anatomy", anatomy),
        ("Symptoms", symptoms),
        ("Inheritance", inheritance),
        ("Onset", onset),
    ):
        if values:
            parts.append(f"{label}: {', '.join(values)}.")
    return " ".join(parts)


def iter_disease_ontology(path: Path, skipped: Counter[str] | None = None) -> Iterator[Document]:
    """Disease Ontology terms from a folder holding doid_terms.jsonl.gz and optional DO_*.obo slims."""
    folder = path if path.is_dir() else path.parent
    terms_file = path if path.is_file() else folder / DO_TERMS_FILE
    records = [obj for _, obj in iter_json_lines(terms_file)]
    obo = merge_obo_files(sorted(folder.glob("*.obo")))
    anatomy_freq = Counter(v for r in records for v in r.get("anatomy") or [])
    symptom_freq = Counter(v for r in records for v in r.get("symptom") or [])
    inherit_freq = Counter(v for r in records for v in r.get("inheritance_pattern") or [])
    for line_no, rec in enumerate(records, start=1):
        doid, name = clean_text(rec.get("id")), clean_text(rec.get("name"))
        if not doid or not name:
            raise RejectError("bad_corpus_record", f"{terms_file} record {line_no}: needs 'id' and 'name'")
        definition = clean_text(rec.get("definition")).replace("_", " ")
        extra = obo.get(doid, {"synonyms": [], "xrefs": []})
        synonyms = [
            s for s in dict.fromkeys(clean_text(s) for s in extra["synonyms"]) if s and s.casefold() != name.casefold()
        ]
        parents = [clean_text(p) for p in rec.get("parents") or [] if clean_text(p)]
        anatomy = specific_terms(
            rec.get("anatomy") or [], anatomy_freq, lambda v: bool(_GENERIC_ANATOMY.search(v)), DO_MAX_LIST
        )
        symptoms = specific_terms(
            rec.get("symptom") or [], symptom_freq, lambda v: bool(_GENERIC_SYMPTOM.search(v)), DO_MAX_LIST
        )
        inheritance = specific_terms(
            rec.get("inheritance_pattern") or [], inherit_freq, lambda v: v in _GENERIC_INHERITANCE, 2
        )
        onset = [o for o in rec.get("onset") or [] if o and o != "onset"][:2]
        text = disease_ontology_text(name, definition, synonyms, parents, anatomy, symptoms, inheritance, onset)
        yield Document(
            doc_id=doid,
            title=name,
            text=text,
            concept_ids=unique_concepts([doid, *extra["xrefs"]]),
            metadata=scalar_metadata(
                {"doid": doid, "has_definition": bool(definition), "synonyms": synonyms, "parents": parents}
            ),
        )


# ---------------------------------------------------------------- MedQuAD


def medquad_doc_id(rec: dict[str, Any]) -> str:
    """'<source>-<qid>-<hash(focus, question)>': MedQuAD reuses question ids across foci."""
    source, qid = clean_text(rec.get("source")), clean_text(rec.get("qid"))
    return f"{source}-{qid}-{short_hash(clean_text(rec.get('focus')), clean_text(rec.get('question')), length=6)}"


def iter_medquad(path: Path, skipped: Counter[str] | None = None) -> Iterator[Document]:
    """MedQuAD QA pairs (medquad_qa.jsonl.gz): question + answer, focus as title, UMLS CUIs.

    Exact duplicate QA pairs are read once (counted ``duplicate_text``), pairs without an answer are
    skipped (``empty_text``); a reused id gets a ``~<n>`` suffix in file order.
    """
    skipped = skipped if skipped is not None else Counter()
    seen_pairs: set[str] = set()
    seen_ids: Counter[str] = Counter()
    for line_no, rec in iter_json_lines(path):
        question, answer = clean_text(rec.get("question")), clean_text(rec.get("answer"))
        if not rec.get("qid"):
            raise RejectError("bad_corpus_record", f"{path} line {line_no}: needs 'qid'")
        if not answer:
            skipped["empty_text"] += 1
            continue
        pair = short_hash(question, answer, length=16)
        if pair in seen_pairs:
            skipped["duplicate_text"] += 1
            continue
        seen_pairs.add(pair)
        doc_id = medquad_doc_id(rec)
        seen_ids[doc_id] += 1
        if seen_ids[doc_id] > 1:
            doc_id = f"{doc_id}~{seen_ids[doc_id]}"
        focus = clean_text(rec.get("focus"))
        question = question.replace(" ?", "?")
        yield Document(
            doc_id=doc_id,
            title=focus or question,
            text=f"{question} {answer}" if question else answer,
            concept_ids=unique_concepts(rec.get("umls_cuis") or []),
            metadata=scalar_metadata(
                {k: rec.get(k) for k in ("source", "url", "focus", "qtype", "qid", "semantic_group")}
            ),
        )


# ---------------------------------------------------------------- PubMedQA


def iter_pubmedqa(path: Path, skipped: Counter[str] | None = None) -> Iterator[Document]:
    """PubMedQA PQA-L (ori_pqal.json): labelled abstract sections + conclusion, question as title."""
    with open_text(path) as fh:
        try:
            data = json.load(fh)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RejectError("bad_corpus_file", f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RejectError("bad_corpus_file", f"{path}: expected an object PMID -> record")
    for pmid, rec in data.items():
        contexts = rec.get("CONTEXTS") if isinstance(rec, dict) else None
        if not isinstance(contexts, list) or not contexts:
            raise RejectError("bad_corpus_record", f"{path} PMID {pmid}: needs a non-empty 'CONTEXTS' list")
        labels = rec.get("LABELS") or []
        sections = [
            f"{clean_text(labels[i]).capitalize()}: {clean_text(c)}" if i < len(labels) and labels[i] else clean_text(c)
            for i, c in enumerate(contexts)
        ]
        conclusion = clean_text(rec.get("LONG_ANSWER"))
        if conclusion:
            sections.append(f"Conclusion: {conclusion}")
        meshes = [clean_text(m) for m in rec.get("MESHES") or [] if clean_text(m)]
        yield Document(
            doc_id=str(pmid),
            title=clean_text(rec.get("QUESTION")),
            text=" ".join(sections),
            concept_ids=unique_concepts(f"MESH:{m}" for m in meshes),
            metadata=scalar_metadata(
                {
                    "pmid": str(pmid),
                    "year": clean_text(rec.get("YEAR")),
                    "mesh_terms": meshes,
                    "final_decision": rec.get("final_decision"),
                }
            ),
        )


# ---------------------------------------------------------------- generic JSON lines


def iter_jsonl(path: Path, skipped: Counter[str] | None = None) -> Iterator[Document]:
    """Generic JSON lines: {id, title?, text, metadata?, concept_ids?} per line (``.gz`` allowed).

    A line without an id is an error; one with an empty text is skipped by `iter_documents`.
    """
    for line_no, rec in iter_json_lines(path):
        doc_id, text = clean_text(rec.get("id")), clean_text(rec.get("text"))
        if not doc_id:
            raise RejectError("bad_corpus_record", f"{path} line {line_no}: missing or empty field 'id'")
        metadata = rec.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise RejectError("bad_corpus_record", f"{path} line {line_no}: field 'metadata' must be an object")
        concepts = rec.get("concept_ids", metadata.get("concept_ids")) or []
        if isinstance(concepts, str):
            concepts = [c for c in re.split(r"[|;,]", concepts)]
        yield Document(
            doc_id=doc_id,
            title=clean_text(rec.get("title")),
            text=text,
            concept_ids=unique_concepts(concepts),
            metadata=scalar_metadata({k: v for k, v in metadata.items() if k != "concept_ids"}),
        )


# ---------------------------------------------------------------- registry

def iter_uberon(path: Path, skipped: Counter[str] | None = None) -> Iterator[Document]:
    from medtrinity_assets.knowledge.anatomy import iter_uberon as read_uberon

    yield from read_uberon(path, skipped)


ADAPTERS: dict[str, Callable[[Path, Counter[str]], Iterator[Document]]] = {
    "disease_ontology": iter_disease_ontology,
    "uberon": iter_uberon,
    "medquad": iter_medquad,
    "pubmedqa": iter_pubmedqa,
    "jsonl": iter_jsonl,
    "pubmed_xml": iter_pubmed_xml,
}


def iter_documents(corpus: CorpusConfig, skipped: Counter[str] | None = None) -> Iterator[Document]:
    """The corpus's documents in file order, at most `max_documents`.

    Documents with an empty text, HTML markup or an id seen before are left out and counted in
    `skipped` (reason -> n, reasons in SKIP_REASONS), as are the records adapters leave out.
    """
    if not corpus.path.exists():
        raise RejectError("corpus_file_missing", f"corpus {corpus.name!r}: {corpus.path} does not exist")
    skipped = skipped if skipped is not None else Counter()
    seen: set[str] = set()
    count = 0
    for doc in ADAPTERS[corpus.adapter](corpus.path, skipped):
        if corpus.max_documents is not None and count >= corpus.max_documents:
            return
        reason = (
            "empty_text" if not doc.text.strip()
            else "html" if HTML_MARKUP.search(doc.text)
            else "duplicate_id" if doc.doc_id in seen
            else ""
        )
        if reason:
            skipped[reason] += 1
            continue
        seen.add(doc.doc_id)
        count += 1
        yield doc


def load_documents(corpus: CorpusConfig, skipped: Counter[str] | None = None) -> list[Document]:
    """All documents of a corpus (respecting `max_documents`); skips counted in `skipped`."""
    return list(iter_documents(corpus, skipped))
