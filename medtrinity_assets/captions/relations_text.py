"""Modality naming and ROI-region relationship wording from typed facts.

- `modality_display(modality)`  ``(noun for "<noun> image", section text, family key)``
- `related_first(facts)`  the image's structures, those related to the ROI first
- `relation_clauses(name, facts)`  one clause per related structure from the typed `Relation`s
  (``borders the spleen``, ``lies anterior to and to the patient's left of the liver``,
  ``contains 3 nuclei``, ``lies posterior to the aorta, in contact with it``); a structure sharing
  the ROI's label is "a neighbouring <one>"
"""

from __future__ import annotations

import re

from medtrinity_assets.records import CaptionFacts, Relation

from .data_files import wording
from .labels import Name, conjugations, number_words, roi_label_of, structure_name
from .vocab import MODALITIES, MODALITY_CODES, join_words, modality_families, unique

_KIND_ORDER = ("within", "overlaps", "borders", "contains", "direction")
_IMAGE_FRAME = frozenset({"left", "right", "above", "below"})  # typed directions as displayed (no display frame)


def _roots(text: str) -> set[str]:
    """Crude word roots of a phrase's content words ("abuts" and "abutting" share "abut")."""
    return {w[:4] for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3 and w not in ("other", "with")}


def _in_sentence(name: str) -> str:
    return " ".join(w[:1].lower() + w[1:] if w[1:].islower() else w for w in name.split())


def modality_display(modality: str) -> tuple[str, str, str | None]:
    """``(noun for "<noun> image", section text, family key)`` for a modality string."""
    raw = (modality or "").strip()
    families = sorted(modality_families(raw))
    if len(families) != 1:
        return (_in_sentence(raw) or "medical"), (raw[:1].upper() + raw[1:] or "Not stated"), None
    fam = MODALITIES[families[0]]
    is_plain = raw.upper() in MODALITY_CODES or raw.lower() in (fam.short.lower(), fam.long.lower())
    if not is_plain:
        return _in_sentence(raw), raw[:1].upper() + raw[1:], fam.key
    long = fam.long[:1].upper() + fam.long[1:]
    section = long + (f" ({fam.short})" if fam.short.isupper() and fam.short.lower() != fam.long.lower() else "")  # an abbreviation
    return fam.short, section, fam.key


def related_first(facts: CaptionFacts) -> list[str]:
    """Structure labels of the image: the ROI's, then those it relates to, then the rest."""
    roi = roi_label_of(facts)
    related = [r.other for r in facts.relations]
    return unique([roi or "", *related, *facts.other_rois])


def _clause(kind: str, rels: list[Relation], roi_label: str, plural: bool, pick: int = 0) -> str:
    w = wording().relations

    def one(forms: tuple[str, ...]) -> str:
        return forms[pick % len(forms)]

    other = rels[0].other
    same = other == roi_label
    name = structure_name(other)
    if kind == "direction":
        words = join_words([one(w.directions[r.direction]) for r in rels if r.direction in w.directions])
        if not words:
            return ""
        template = w.direction_same if same else w.direction
        verb = one(w.direction_verb)
        return conjugations(plural).get(verb, verb) + " " + template.format(words=words, other=name.text, other_one=name.one)
    if kind == "contains":
        count = max(r.count for r in rels)
        if count > 1 or same:
            text = one(w.contains_many).format(count=number_words(count), other_many=name.many if count > 1 else name.one)
        else:
            text = one(w.contains).format(other=name.text)
    elif kind == "borders" and same:
        verb = one(w.borders_same).split(" ", 1)[0]
        text = one(w.borders_same).format(other_one=name.one) if len(rels) == 1 else (
            f"{verb} {number_words(len(rels))} neighbouring {name.many}"
        )
    else:
        text = one(getattr(w, kind)).format(other=name.text)
    verb, _, rest = text.partition(" ")
    return f"{conjugations(plural).get(verb, verb)} {rest}"


def relation_clauses(name: Name, facts: CaptionFacts, limit: int = 4, pick: int = 0) -> list[str]:
    """Clauses for the ROI's typed relations, grouped per (kind, other structure), at most `limit`;
    `pick` chooses among equivalent phrasings (data/wording.yaml, 0 = the reference form). A
    structure the ROI borders and has a direction to is named once, in the bordering clause's place
    ("lies anterior to the spinal cord, in contact with it")."""
    w = wording().relations
    roi = roi_label_of(facts) or ""
    groups: dict[tuple[str, str], list[Relation]] = {}
    for r in facts.relations:
        if r.kind in _KIND_ORDER:
            groups.setdefault((r.kind, r.other), []).append(r)
    touching = {o for k, o in groups if k == "borders" and o != roi and ("direction", o) in groups}
    groups = {k: v for k, v in groups.items() if not (k[0] == "borders" and k[1] in touching)}
    place = {kind: i for i, kind in enumerate(_KIND_ORDER)}
    ordered = sorted(groups.items(), key=lambda kv: place["borders" if kv[0][1] in touching else kv[0][0]])
    clauses: list[str] = []
    tails: dict[int, str] = {}  # clause index -> its contact tail (", in contact with it")
    merged: dict[str, int] = {}  # clause head ("borders", "lies anterior to") -> index of its clause
    for (kind, other), rels in ordered:
        clause = _clause(kind, rels, roi, name.plural, pick)
        tail = " the " + structure_name(other).text
        if kind == "direction" and other in touching and clause:
            # a form sharing no word with this record's bordering verb ("abuts ..., abutting it" never); a second one differs
            forms = [t for t in w.in_contact if not _roots(t) & _roots(w.borders[pick % len(w.borders)])] or list(w.in_contact)
            form = forms[(pick + len(tails)) % len(forms)]
            tails[len(clauses)] = form.format(it="them" if structure_name(other).plural else "it")
            clauses.append(clause)
            continue
        if other == roi or kind == "contains" or not clause.endswith(tail):
            clauses.append(clause)
            continue
        head = clause[: -len(tail)]
        if head in merged:  # "borders the stomach" + "borders the liver" -> one clause
            clauses[merged[head]] += "|" + structure_name(other).text
            continue
        merged[head] = len(clauses)
        clauses.append(clause)
    out: list[tuple[str, str]] = []
    for i, c in enumerate(clauses):  # "borders the stomach|right kidney" -> "borders the stomach and the right kidney"
        head, *more = c.split("|")
        if head:
            out.append((join_words([head, *[f"the {m}" for m in more]]) if more else head, tails.get(i, "")))
    out = out[:limit]
    image_frame = [r for r in facts.relations if r.kind == "direction" and r.direction in _IMAGE_FRAME]
    verbs = tuple(conjugations(name.plural).get(v, v) + " " for v in w.direction_verb)
    last = max((i for i, (c, _) in enumerate(out) if c.startswith(verbs)), default=None)
    if image_frame and last is not None:  # directions as displayed, said once ("... of the spleen on the image")
        out[last] = (out[last][0] + " " + w.image_frame[pick % len(w.image_frame)], out[last][1])
    return [c + tail for c, tail in out]
