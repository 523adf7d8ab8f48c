"""Background knowledge in a caption: whole sentences of passages about the ROI's own concept.

A passage is used only when its `concept_ids` contain the concept of the ROI label
(`facts.roi_concept`) or of a recorded finding (`facts.finding_concepts`); otherwise no
knowledge sentence is written. A sentence is quoted whole, as written in the passage (title
prefix, list markers, reference marks and short parenthetical asides removed), and only when it is a declarative sentence
with a finite verb: ontology fields (``Is a: ...``, ``Also called: ...``), questions, advice,
parentheticals left after that, image sides, modality names and organs not on the image are never
quoted.

An ontology definition (Disease Ontology, UBERON) is a noun phrase (``A liver carcinoma that has
material basis in undifferentiated hepatocytes and located in the liver.``). It becomes a sentence
only about its own concept, whose name is the passage's title: ``Hepatocellular carcinoma is a
liver carcinoma that arises from undifferentiated hepatocytes.`` (a finding: its name; an
anatomical structure: ``The spleen is the organ that ...``), keeping the first relative clause and
dropping later ``and ...`` conjuncts (which keeps it true); the result passes the same filters as
a quoted sentence. A definition whose title is not the ROI's or a recorded finding's concept name
is never glued to anything.
"""

from __future__ import annotations

import re

from medtrinity_assets.records import CaptionFacts, Passage

from .checks import FORBIDDEN_PATTERNS, REFUSAL_PATTERNS, compile_patterns, sentences
from .data_files import wording
from .vocab import modality_mentions, organs_named, word_stems

SENTENCE_CHARS = (30, 280)

_FINITE = re.compile(
    r"\b(?:is|are|was|were|has|have|had|can|may|might|will|causes?|affects?|occurs?|develops?|forms|"
    r"results?|arises?|contains?|consists?|appears?|involves?|leads?|spreads?|grows?|begins?|starts?)\b",
    re.I,
)
_FRAGMENT = re.compile(r":|^(?:is a|also called|anatomy|synonyms?)\b", re.I)
_SIDE_OR_PERSON = re.compile(
    r"\b(?:left|right|upper|lower|top|bottom|you|your|we|our|us|i|doctor|doctors|treatment|treated|symptoms?)\b", re.I
)


def clean_passage(text: str, title: str = "") -> str:
    """Passage text on one line without its title prefix, list markers, headings, reference marks or
    short parenthetical asides."""
    text = (text or "").strip()
    if title and text.lower().startswith(title.strip().lower() + ":"):
        text = text[len(title.strip()) + 1 :]
    for relation, words in wording().passage_relation_words.items():
        text = re.sub(r"\b" + relation.replace("_", "[ _]") + r"\b", words, text)
    text = re.sub(r"\b(is|are) \1\b", r"\1", text)  # "that is located in" + located_in -> "is is"
    text = re.sub(r"\bKey Points\b", " ", text)
    text = re.sub(r"(?m)^\s*[-*\u2022]\s*", " ", text)
    text = re.sub(r"\s-\s", " ", text)
    text = re.sub(r"\[\d+(?:[,\u2013-]\d+)*\]", "", text)
    text = re.sub(r"\.{2,}(?=\s|$)", ".", text)  # "of the thorax.." (an upstream typo), "..." at an end
    text = re.sub(r"\s*\([^()]{1,80}\)", "", text)  # asides: "Tuberculosis (TB) is", "gluteus maximus (or glutæus maximus)"
    return re.sub(r"\s+", " ", text).strip()


def _main_clause(sentence: str) -> str:
    """The part before a relative clause: ``A carcinoma that is ...`` has no verb of its own."""
    return re.split(r"\b(?:that|which|who|whose)\b", sentence, maxsplit=1)[0]


def concept_ids(facts: CaptionFacts) -> list[str]:
    """The concepts background may be about: the ROI's (and the structure a sided one is a kind of:
    left kidney -> kidney), then the recorded findings' (normal excluded)."""
    broader = _unsided(facts.roi_concept)
    refs = [facts.roi_concept, broader, *facts.finding_concepts]
    out = [ref.concept_id for ref in refs if ref is not None and ref.kind != "normal" and ref.concept_id]
    return list(dict.fromkeys(out))


def _unsided(ref):
    """The vocabulary concept an anatomy ROI concept is the sided kind of ("left kidney" -> kidney), or None."""
    from medtrinity_assets.knowledge.vocabulary import load_vocabulary

    return load_vocabulary().unsided(ref.concept_id) if ref is not None and ref.kind == "anatomy" and ref.concept_id else None


def sentence_is_usable(sentence: str, facts: CaptionFacts) -> bool:
    """A whole declarative sentence with no parentheticals, sides, persons, modality names or foreign organs."""
    lo, hi = SENTENCE_CHARS
    if not (lo <= len(sentence) <= hi) or "?" in sentence or "(" in sentence or not sentence.endswith(".") or not sentence[0].isupper():
        return False
    if _FRAGMENT.search(sentence) or not _FINITE.search(_main_clause(sentence)):
        return False
    if _SIDE_OR_PERSON.search(sentence) or modality_mentions(sentence):
        return False
    if any(p.search(sentence) for p in compile_patterns(FORBIDDEN_PATTERNS + REFUSAL_PATTERNS)):
        return False
    known = word_stems(" ".join([*facts.organs, facts.roi_label or "", *facts.other_rois, *facts.image_labels]))
    if not all(o in known for o in organs_named(word_stems(sentence))):
        return False
    return not _names_unrecorded_disease(sentence, facts)


def _names_unrecorded_disease(sentence: str, facts: CaptionFacts) -> bool:
    """A disease the image is not recorded with (a definition's parent class, "a coronavirus
    infectious disease"), by the same Disease Ontology names the caption checks use."""
    from medtrinity_assets.knowledge.mentions import unrecorded_diseases
    from medtrinity_assets.knowledge.vocabulary import load_vocabulary

    return bool(unrecorded_diseases(sentence, list(facts.image_labels), load_vocabulary()))


def passages_about(facts: CaptionFacts) -> list[Passage]:
    """Retrieved passages whose concept ids include the ROI's or a finding's concept, best first."""
    wanted = concept_ids(facts)
    fitting = [p for p in usable_passages(facts.knowledge) if any(c in p.concept_ids for c in wanted)]
    return sorted(fitting, key=lambda p: -p.score)


DEFINITION_CORPORA = ("disease_ontology", "anatomy")


def usable_passages(passages) -> list[Passage]:
    """Retrieved passages without the ontology definitions judged wrong or unhelpful
    (`wording.yaml` definition_skip): neither the composer nor a model is given them."""
    return [p for p in passages if not _judged_wrong(p)]


def _judged_wrong(passage: Passage) -> bool:
    """An ontology definition listed in `wording.yaml` definition_skip."""
    skip = wording().definition_skip
    return passage.corpus in DEFINITION_CORPORA and any(c in skip for c in passage.concept_ids)
# "and" that starts a further clause of a definition (not one joining list items: "fever, cough and shortness of breath")
_CONJUNCT = re.compile(r",? and (?=(?:that|which|to|has|have|is|are|located|arises|results|derives|forms|attach\w*)\b)")


def _plain(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", (text or "").lower())


def _label_core(label: str) -> str:
    """A label without side words and numbered levels (``rib left 9`` -> ``rib``)."""
    from .data_files import labels

    words = re.split(r"[\s_+]+", (label or "").lower())
    return " ".join(w for w in words if w and w not in labels().side_words and not any(c.isdigit() for c in w))


def definition_subjects(passage: Passage, facts: CaptionFacts) -> list[str]:
    """What a definition passage defines, as sentence subjects to try in order, when that is the ROI's
    own or a recorded finding's concept (``Hepatocellular carcinoma``; ``The gall bladder``, then the
    label's own wording ``The gallbladder``); else none. A label mapped to a broader concept (``lung
    lower lobe left`` -> lung) gets no definition; one that names the concept once its side and level
    words are dropped does (``heart atrium left``: "heart atrium" is a synonym of cardiac atrium)."""
    from .labels import structure_name

    title = _plain(passage.title)
    for ref in facts.finding_concepts:
        if ref.kind == "finding" and ref.concept_id in passage.concept_ids and _plain(ref.name) == title:
            return [ref.name[:1].upper() + ref.name[1:]]
    ref = facts.roi_concept
    broader = _unsided(ref)
    if broader is not None and broader.concept_id in passage.concept_ids and _plain(broader.name) == title:
        return ["The " + structure_name(passage.title).one]  # "The kidney is ..." for a left kidney
    if ref is None or ref.concept_id not in passage.concept_ids or _plain(ref.name) != title:
        return []
    core = _label_core(facts.roi_label or "")
    by_core = _core_match(core, ref.concept_id)  # "gallbladder", "heart atrium": the concept by name or synonym
    if not (ref.match_type in ("exact", "synonym", "alias") or _plain(structure_name(core).one) == title or by_core):
        return []
    title_subject = "The " + structure_name(passage.title).one
    if by_core in ("exact", "synonym"):  # the caption's own wording of the label first ("the gallbladder", not "the gall bladder")
        return list(dict.fromkeys(["The " + structure_name(core).one, title_subject]))
    return [title_subject]


def _core_match(core: str, concept_id: str) -> str | None:
    """How the label's core words name the concept itself (exact | synonym | alias), or None when they
    do not (a part mapped to its organ, a different concept)."""
    from medtrinity_assets.knowledge.vocabulary import load_vocabulary

    from .labels import structure_name

    vocab = load_vocabulary()
    for words in dict.fromkeys([core, structure_name(core).one] if core else []):  # "intervertebral discs" -> "... disc"
        ref = vocab.lookup(words)
        if ref.concept_id == concept_id and ref.match_type in ("exact", "synonym", "alias"):
            return ref.match_type
    return None


def definition_sentence(passage: Passage, facts: CaptionFacts) -> str | None:
    """An ontology definition made a sentence about its own concept (see the module docs), or None."""
    if passage.corpus not in DEFINITION_CORPORA or _judged_wrong(passage):
        return None
    parts = sentences(clean_passage(passage.text, passage.title))
    subjects = definition_subjects(passage, facts) if parts else []
    first = parts[0].rstrip(".") if parts else ""
    if not subjects or _FRAGMENT.search(first) or _FINITE.search(_main_clause(first)):
        return None  # not its own concept, a field, or already a sentence (quoted as such if usable)
    body = _definition_body(first)
    for subject in subjects:
        sentence = f"{subject} is {body}."
        if sentence_is_usable(sentence, facts):
            return sentence
    return None


def _definition_body(first: str) -> str:
    """A definition's noun phrase as the complement of "is", with its relative clause cut to the first
    conjunct ("that filters blood and ..." -> "that filters blood") or, when still longer than a
    sentence may be, to its first comma ("which secretes bile and ..., synthesizes ..." -> "which
    secretes bile and ..."): a shorter list of what the structure does is still true of it."""
    body = first
    relative = re.search(r"\b(?:that|which)\b", first)
    if relative:
        clause = first[relative.end() :]
        cut = _CONJUNCT.search(clause)
        if cut and len(clause[: cut.start()].split()) >= 3:
            body = first[: relative.end()] + clause[: cut.start()]
        elif len(first) > SENTENCE_CHARS[1] - 30 and "," in clause and len(clause.split(",")[0].split()) >= 3:
            body = first[: relative.end()] + clause.split(",")[0]
    body = body.strip().rstrip(",")
    if not re.match(r"(?i)(?:a|an|the)\b", body):
        body = body[:1].lower() + body[1:] if body[1:2].islower() else body
        body = ("an " if body[:1].lower() in "aeiou" else "a ") + body
    return body[:1].lower() + body[1:]


def knowledge_sentence(facts: CaptionFacts, max_sentences: int = 3) -> str | None:
    """The best passage's definition of the facts' concept made a sentence, or its first usable
    whole sentence; None when no passage about the facts' concepts gives one."""
    for passage in passages_about(facts):
        definition = definition_sentence(passage, facts)
        if definition:
            return definition
        for sentence in sentences(clean_passage(passage.text, passage.title))[:max_sentences]:
            if sentence_is_usable(sentence, facts) and not sentence.startswith(("It ", "They ")):
                return sentence
    return None
