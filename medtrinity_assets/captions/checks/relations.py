"""Directions a caption states between the ROI and another structure, against the typed relations.

``relation_contradiction``: a clause puts the ROI on the opposite side of a structure from the
record's `Relation(kind="direction")`: "the liver lies posterior to the aorta" when the record has
the liver anterior to it, or, with the ROI as the object, "the aorta lies anterior to the liver"
(read the other way round). Direction words are the lexicon's ``relation_directions`` (patient
frame: anterior / posterior / superior / inferior / patient's left or right; image frame: left /
right / above / below of the display); a word is compared only with recorded directions of its
own frame, and only a recorded opposite with no recorded agreement is a contradiction (a
direction the record does not hold is not checked: relations are recorded for neighbours only).

``contact_contradiction``: a clause says the ROI touches, borders, abuts, overlaps or lies within
a structure of the image that is not in the record's `contacts` (every structure it touches or
overlaps, complete, unlike the capped relations), or denies contact with one that is ("not in
contact with the liver"; "separate from the other structures" when it touches one). Contact is
symmetric: "the spinal cord abuts the discs" is read for a disc ROI too. Records without
`contacts` (None: not recorded) are not checked.

The subject of a clause is the first structure the sentence names (``It``/``They`` at its start:
the ROI); the objects are the structures named after the direction or contact words, up to the
next verb ("..., abutting it": the structure named just before).
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..labels import structure_name
from .base import CaptionView, alternation, name_forms

_OPPOSITE = {
    "anterior": "posterior", "posterior": "anterior", "superior": "inferior", "inferior": "superior",
    "patient_left": "patient_right", "patient_right": "patient_left",
    "left": "right", "right": "left", "above": "below", "below": "above",
}
_VERB = re.compile(r"\b(?:is|are|lies|lie|sits|sit|borders?|abuts?|touches|touch|contains?|encloses?|overlaps?|measures?|appears?)\b")
_CLAUSE_END = re.compile(r"[,;:.]")
_PRONOUN = re.compile(r"^\s*(?:it|they)\b", re.I)


@lru_cache(maxsize=8)
def _direction_patterns(items: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((key, re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in pats) + r")\b", re.I)) for key, pats in items)


def name_table(labels: list[str]) -> list[tuple[str, str]]:
    """(written form, label) pairs, longest form first (``left upper lobe of the lung`` before ``lung``);
    built once per set of labels (every check of a caption asks for the same one)."""
    return _name_table(tuple(labels))


@lru_cache(maxsize=256)
def _name_table(labels: tuple[str, ...]) -> list[tuple[str, str]]:
    out = set()
    for label in labels:
        n = structure_name(label)
        for form in {n.text, n.one, n.many, *name_forms(label)}:
            if form:
                out.add((form.lower(), label))
    return sorted(out, key=lambda x: -len(x[0]))


def find_names(text: str, names: list[tuple[str, str]]) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, label) of structure names in a lower-case text."""
    taken: list[tuple[int, int, str]] = []
    for form, label in names:
        for m in re.finditer(rf"\b{re.escape(form)}\b", text):
            if not any(s < m.end() and m.start() < e for s, e, _ in taken):
                taken.append((m.start(), m.end(), label))
    return sorted(taken)


def _stated(sentence: str, view: CaptionView, names: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(other structure, direction of the ROI relative to it) pairs a sentence states."""
    low = sentence.lower()
    roi = view.roi
    subject = subject_of(low, roi, names)
    items = tuple((k, tuple(v)) for k, v in view.lex["relation_directions"].items())
    out = []
    for key, rx in _direction_patterns(items):
        for m in rx.finditer(low):
            for obj in _objects(low, m.end(), names):
                if subject == roi and obj != roi:
                    out.append((obj, key))
                elif obj == roi and subject and subject != roi:
                    out.append((subject, _OPPOSITE[key]))
    return out


def subject_of(low: str, roi: str, names: list[tuple[str, str]]) -> str | None:
    """The structure a sentence speaks about: the first one it names after a verbless lead-in."""
    lead, comma, rest = low.partition(",")
    body = rest if comma and not _VERB.search(lead) else low  # "Spatially, ...", "As for its neighbours, ..."
    if _PRONOUN.match(body):
        return roi
    named = find_names(body, names)
    return named[0][2] if named else None


def _objects(low: str, end: int, names: list[tuple[str, str]], pronoun: re.Pattern[str] | None = None) -> list[str]:
    """Structures named after position `end` up to the clause's end or next verb; with `pronoun`
    ("it"/"them") right after: the structure named last before `end`."""
    tail = low[end:]
    if pronoun is not None and pronoun.match(tail):
        before = find_names(low[:end], names)
        return [before[-1][2]] if before else []
    stop = min([x.start() for x in (_CLAUSE_END.search(tail), _VERB.search(tail)) if x] or [len(tail)])
    return [label for _, _, label in find_names(tail[:stop], names)]


def _contact_claims(sentence: str, view: CaptionView, names: list[tuple[str, str]]) -> tuple[set[str], set[str], bool]:
    """(structures said to touch the ROI, structures said not to, whether it is said to touch nothing)."""
    low, roi, lex = sentence.lower(), view.roi, view.lex
    subject = subject_of(low, roi, names)
    pronoun, negation = re.compile(lex["contact_pronoun"]), re.compile(lex["contact_negation"])
    said: set[str] = set()
    denied: set[str] = set()
    for rx, out in ((alternation(tuple(lex["relation_contact"])), said), (alternation(tuple(lex["no_contact"])), denied)):
        for m in rx.finditer(low):
            if out is said and negation.search(low[: m.start()]):
                continue  # "does not touch": read by no_contact
            for obj in _objects(low, m.end(), names, pronoun):
                if subject == roi and obj != roi:
                    out.add(obj)
                elif obj == roi and subject and subject != roi:
                    out.add(subject)
    alone = subject == roi and bool(alternation(tuple(lex["no_contact_any"])).search(low))
    return said, denied, alone


def contact_problems(view: CaptionView) -> list[str]:
    contacts = view.facts.contacts
    if contacts is None or not view.roi:
        return []
    touching = set(contacts)
    names = name_table([view.roi, *view.facts.other_rois, *touching])
    for s in view.image_sentences:
        said, denied, alone = _contact_claims(s, view, names)
        if (said - touching - {view.roi}) or (denied & touching - {view.roi}) or (alone and touching - {view.roi}):
            return ["contact_contradiction"]
    return []


def relation_problems(view: CaptionView) -> list[str]:
    relations = [r for r in view.facts.relations if r.kind == "direction" and r.direction in _OPPOSITE]
    if not relations or not view.roi:
        return []
    recorded: dict[str, set[str]] = {}
    for r in relations:
        recorded.setdefault(r.other, set()).add(r.direction)  # type: ignore[arg-type]
    names = name_table([view.roi, *recorded, *view.facts.other_rois])
    for s in view.image_sentences:
        for other, direction in _stated(s, view, names):
            held = recorded.get(other, set())
            if _OPPOSITE[direction] in held and direction not in held:
                return ["relation_contradiction"]
    return []
