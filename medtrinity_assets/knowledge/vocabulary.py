"""Concept vocabulary: ROI labels and image-level findings -> `ConceptRef`.

Findings map to Disease Ontology ids, structures to Uberon ids, by names and synonyms read from
the corpora (disease_ontology and uberon adapters), the curated rules and aliases of
``data/knowledge/concepts.yaml`` and a source's own ``concepts:`` mapping in the catalog.
No fuzzy matching: a near-miss name ("non-ossifying fibroma") never lands on another concept
("ossifying fibroma"); it stays unmapped (match_type ``none``) and gets no passage.

Lookup order for a label: non-finding words -> catalog mapping -> aliases (curated: they override
an ontology name) -> the label as written (name, synonym) -> normalised forms, each an alias first
(side words first, then sides/levels/plurals removed, then the head noun or the organ word of
"organ part side" labels; never for finding words).

A sided structure is a kind of its unsided one (`unsided`: "left kidney" -> kidney; Uberon's
lateral subtypes are is_a their structure), so what is true of a kidney is true of the left
kidney; a part is not a kind ("lower lobe of lung" is part of a lung, never given the lung's facts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from medtrinity_assets.knowledge.config import CorpusConfig
from medtrinity_assets.knowledge.concepts import normalise_concept_id
from medtrinity_assets.records import ConceptRef, RejectError
from medtrinity_resources.yaml_config import read_yaml_mapping

FINDING, ANATOMY, NORMAL = "finding", "anatomy", "normal"
_WORD = re.compile(r"\w+", re.UNICODE)
_LEVEL = re.compile(r"^[a-z]?\d+[a-z]?$")  # T9, L1, 9, 000
LATERAL_SIDES = ("left", "right")  # the first word of a sided structure's name ("bilateral" names no subtype)


def knowledge_data_file(name: str, corpora_yaml: str | Path | None = None) -> Path:
    """`name` next to the corpora file in use, else the bundled one in data/knowledge/ (a corpora file
    elsewhere, e.g. a capped test copy, keeps using the bundled concept rules and evaluation set)."""
    from medtrinity_assets import settings

    beside = Path(corpora_yaml or settings.corpora_path()).resolve().parent / name
    return beside if beside.exists() else settings.REPO_ROOT / "data" / "knowledge" / name


def default_rules_path() -> Path:
    return knowledge_data_file("concepts.yaml")


def label_key(text: str) -> str:
    """Matching key: case-folded words, '_' and punctuation as spaces ("Crohn's" -> "crohn s")."""
    return " ".join(_WORD.findall(str(text).replace("_", " ").casefold()))


def singular_forms(word: str) -> list[str]:
    """Candidate singulars of an English/Latin anatomical plural (vertebrae, nuclei, arteries, lungs)."""
    out = []
    if word.endswith("ae"):
        out.append(word[:-1])
    if word.endswith("i") and len(word) > 3:
        out.append(word[:-1] + "us")
    if word.endswith("ies"):
        out.append(word[:-3] + "y")
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        out.append(word[:-1])
    return out


@dataclass(frozen=True)
class Concept:
    concept_id: str
    kind: str  # finding | anatomy
    name: str
    synonyms: tuple[str, ...] = ()
    xrefs: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.synonyms)

    @property
    def filter_ids(self) -> tuple[str, ...]:
        """Ids a chunk about this concept may carry: the concept id and its UMLS/MeSH/NCIt xrefs."""
        return (self.concept_id, *self.xrefs)


@dataclass(frozen=True)
class ConceptRules:
    non_findings: frozenset[str]
    side_words: frozenset[str]
    finding_words: frozenset[str]
    aliases: Mapping[str, str]


def load_rules(path: str | Path | None = None) -> ConceptRules:
    raw = read_yaml_mapping(path or default_rules_path(), "concepts", lambda m: RejectError("bad_concepts_file", m))

    def words(key: str) -> frozenset[str]:
        values = raw.get(key) or []
        if not isinstance(values, list):
            raise RejectError("bad_concepts_file", f"concepts.yaml: {key!r} must be a list")
        return frozenset(label_key(v) for v in values)

    aliases = raw.get("aliases") or {}
    if not isinstance(aliases, dict):
        raise RejectError("bad_concepts_file", "concepts.yaml: 'aliases' must be a mapping label -> concept id")
    return ConceptRules(
        non_findings=words("non_findings"),
        side_words=words("side_words"),
        finding_words=words("finding_words"),
        aliases={label_key(k): normalise_concept_id(str(v)) for k, v in aliases.items()},
    )


class ConceptVocabulary:
    """Concepts by id and by name key; `lookup` maps a label to a `ConceptRef`."""

    def __init__(self, concepts: Iterable[Concept], rules: ConceptRules) -> None:
        self.rules = rules
        self.by_id: dict[str, Concept] = {}
        self._names: dict[str, list[tuple[int, str]]] = {}  # key -> [(0 name | 1 synonym, id)]
        for concept in concepts:
            self.by_id[concept.concept_id] = concept
            for rank, names in ((0, [concept.name]), (1, concept.synonyms)):
                for name in names:
                    key = label_key(name)
                    if key:
                        self._names.setdefault(key, []).append((rank, concept.concept_id))
        for key in self._names:
            self._names[key] = sorted(set(self._names[key]))
        unknown = sorted(cid for cid in rules.aliases.values() if cid not in self.by_id)
        if unknown:
            raise RejectError("bad_concepts_file", f"concepts.yaml aliases name unknown concept ids: {unknown}")

    def __len__(self) -> int:
        return len(self.by_id)

    def _match(self, key: str, kinds: tuple[str, ...]) -> tuple[Concept, str] | None:
        for kind in kinds:
            for rank, cid in self._names.get(key, []):
                if self.by_id[cid].kind == kind:
                    return self.by_id[cid], "exact" if rank == 0 else "synonym"
        return None

    def is_finding_label(self, key: str) -> bool:
        return bool(set(key.split()) & self.rules.finding_words)

    def normalised_keys(self, key: str, finding: bool) -> list[str]:
        """Normalised spellings of a label key to try, in order (see the module docstring)."""
        words = key.split()
        sides = [w for w in words if w in self.rules.side_words]
        core = [w for w in words if w not in self.rules.side_words and not _LEVEL.match(w)]
        out = []
        if sides:
            out.append(" ".join(sides + [w for w in words if w not in self.rules.side_words]))
        if core:
            out.append(" ".join(core))
            out.extend(" ".join([*core[:-1], s]) for s in singular_forms(core[-1]))
        if not finding:
            for start in range(1, len(core)):  # head noun: "brachial plexus nerve" -> "plexus nerve" -> "nerve"
                out.append(" ".join(core[start:]))
                out.extend(" ".join([*core[start:-1], s]) for s in singular_forms(core[-1]))
            for end in range(len(core) - 1, 0, -1):  # organ first: "lung upper lobe" -> "lung upper" -> "lung"
                out.append(" ".join(core[:end]))
                out.extend(singular_forms(core[end - 1]) if end == 1 else [])
        return [k for k in dict.fromkeys(out) if k and k != key]

    def unsided(self, concept_id: str) -> Concept | None:
        """The structure a sided anatomy concept is a kind of, by exact name ("left kidney" -> kidney),
        or None (not sided, not anatomy, no such structure in the vocabulary)."""
        concept = self.by_id.get(concept_id)
        if concept is None or concept.kind != ANATOMY:
            return None
        side, _, rest = label_key(concept.name).partition(" ")
        hit = self._match(rest, (ANATOMY,)) if side in LATERAL_SIDES and rest else None
        return hit[0] if hit and hit[1] == "exact" else None

    def ref(self, concept: Concept, label: str, match_type: str) -> ConceptRef:
        return ConceptRef(concept.concept_id, concept.kind, concept.name, matched=label, match_type=match_type)

    def lookup(self, label: str | None, role: str = "roi", catalog: Mapping[str, str] | None = None) -> ConceptRef:
        """The concept of an ROI label (`role` 'roi': anatomy first, then findings) or of an image-level
        finding (`role` 'finding': Disease Ontology only). `catalog`: the source's label -> concept id map."""
        text = " ".join(str(label or "").replace("_", " ").split())
        key = label_key(text)
        finding = role == "finding" or self.is_finding_label(key)
        if key in self.rules.non_findings or not key:
            return ConceptRef("", NORMAL, text, matched=text, match_type="none")
        mapped = {label_key(k): normalise_concept_id(v) for k, v in (catalog or {}).items()}
        if key in mapped:
            cid = mapped[key]
            concept = self.by_id.get(cid) or Concept(cid, FINDING if cid.startswith("DOID:") else ANATOMY, text)
            return self.ref(concept, text, "catalog")
        kinds = (FINDING,) if finding else (ANATOMY, FINDING)
        if key in self.rules.aliases:  # curated: overrides an ontology name ("hip" is the hip bone, not the region)
            return self.ref(self.by_id[self.rules.aliases[key]], text, "alias")
        hit = self._match(key, kinds)
        if hit:
            return self.ref(hit[0], text, hit[1])
        for candidate in self.normalised_keys(key, finding):
            hit = (self.by_id[self.rules.aliases[candidate]], "alias") if candidate in self.rules.aliases else self._match(candidate, kinds)
            if hit:
                return self.ref(hit[0], text, "normalised")
        return ConceptRef("", FINDING if finding else ANATOMY, text, matched="", match_type="none")


def concepts_from_corpus(corpus: CorpusConfig) -> list[Concept]:
    """Concepts of a disease_ontology (findings) or uberon (anatomy) corpus; [] for other adapters."""
    if corpus.adapter == "disease_ontology":
        from medtrinity_assets.knowledge.concepts import unique_concepts
        from medtrinity_assets.knowledge.corpora import DO_TERMS_FILE, merge_obo_files
        from medtrinity_assets.knowledge.corpus_io import clean_text, iter_json_lines

        folder = corpus.path if corpus.path.is_dir() else corpus.path.parent
        terms = corpus.path if corpus.path.is_file() else folder / DO_TERMS_FILE
        obo = merge_obo_files(sorted(folder.glob("*.obo")))
        out = []
        for _, rec in iter_json_lines(terms):
            doid, name = clean_text(rec.get("id")), clean_text(rec.get("name"))
            extra = obo.get(doid, {"synonyms": [], "xrefs": []})
            synonyms = tuple(s for s in dict.fromkeys(clean_text(s) for s in extra["synonyms"]) if s and s != name)
            out.append(Concept(doid, FINDING, name, synonyms, unique_concepts(extra["xrefs"])))
        return out
    if corpus.adapter == "uberon":
        from medtrinity_assets.knowledge.anatomy import iter_uberon_terms

        return [
            Concept(
                str(rec["id"]),
                ANATOMY,
                str(rec["name"]),
                tuple(rec.get("synonyms") or []),
                tuple(normalise_concept_id(x) for x in rec.get("xrefs") or []),
            )
            for _, rec in iter_uberon_terms(corpus.path)
        ]
    return []


def build_vocabulary(corpora: Mapping[str, CorpusConfig], rules_path: str | Path | None = None) -> ConceptVocabulary:
    concepts = [c for corpus in corpora.values() for c in concepts_from_corpus(corpus)]
    return ConceptVocabulary(concepts, load_rules(rules_path))


@lru_cache(maxsize=4)
def _cached(corpora_yaml: str, rules_path: str, stamp: Any) -> ConceptVocabulary:
    from medtrinity_assets.knowledge.config import load_corpus_config

    return build_vocabulary(load_corpus_config(corpora_yaml), rules_path)


def load_vocabulary(corpora_yaml: str | Path | None = None, rules_path: str | Path | None = None) -> ConceptVocabulary:
    """The vocabulary of the configured corpora and rules (cached per process while the files are unchanged)."""
    from medtrinity_assets import settings

    yaml_path = Path(corpora_yaml or settings.corpora_path()).resolve()
    rules = Path(rules_path or knowledge_data_file("concepts.yaml", yaml_path)).resolve()
    stamp = tuple(p.stat().st_mtime_ns for p in (yaml_path, rules) if p.exists())
    return _cached(str(yaml_path), str(rules), stamp)
