"""Caption quality figures: appearance claims and their agreement with measurements, diversity,
repetition and wording artefacts (issue 11's targets; printed by bench/caption_report.py and
attached to the `triplets` asset as metadata).

- appearance claim: the colour/texture text states brightness (darker / brighter / hypo- /
  hyper- / similar in ...), texture (homogeneous / heterogeneous), outline or margins, colour or
  a mean HU value
- agreement: every claim read from the text equals what `appearance.assess` derives from the
  record's measurements (mean HU within 1 HU)
- distinct-2: distinct word bigrams / all word bigrams over all captions
- max sentence share: the largest share of captions containing one identical sentence
- artefacts: ``#n`` instance numbers, ``(image side)``, ``+`` or ``_`` in words, raw label order
  (a side word after the structure: ``ventricle left``)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from medtrinity_assets.records import Measurements

from .appearance import Look, assess
from .checks import sentences

_CONTRAST = (
    ("darker", re.compile(r"\b(?:darker(?=(?: and [a-z ]+)? than|(?: and [a-z ]+)?\.)|hypodense|hypointense|hypoechoic)\b")),
    ("brighter", re.compile(r"\b(?:brighter(?=(?: and [a-z ]+)? than|(?: and [a-z ]+)?\.)|hyperdense|hyperintense|hyperechoic)\b")),
    ("similar", re.compile(r"\bsimilar in (?:attenuation|signal intensity|echogenicity|brightness)\b")),
)
_TEXTURE = (
    ("mild", re.compile(r"\bmildly heterogeneous\b")),
    ("heterogeneous", re.compile(r"(?<!mildly )\bheterogeneous\b")),
    ("homogeneous", re.compile(r"(?<!hetero)\bhomogeneous\b")),
)
_SHAPE = re.compile(r"\b(round|oval|elongated|irregular)\b(?= outline| with|, and|\.)|outline is (round|oval|elongated|irregular)")
_MARGIN = re.compile(r"\b(well|ill) defined\b")
_COLOUR = (("deeper", re.compile(r"\bmore deeply coloured\b")), ("paler", re.compile(r"\bpaler in colour\b")))
_HU = re.compile(r"\babout (-?\d+) HU\b")
ARTEFACTS = {
    "instance_number": re.compile(r"#\d"),
    "image_side_parenthetical": re.compile(r"\(image side\)"),
    "plus_or_underscore": re.compile(r"\w[+_]\w"),
    "reversed_label": re.compile(r"\b(?:ventricle|atrium|lobe|kidney|lung|hip|femur|autochthon|iliopsoas|maximus|rib) (?:left|right)\b"),
}


def read_claims(text: str) -> dict[str, object]:
    """Appearance claims stated in a text (category -> value)."""
    lo = (text or "").lower()
    claims: dict[str, object] = {}
    for key, table in (("contrast", _CONTRAST), ("texture", _TEXTURE), ("colour", _COLOUR)):
        found = {value for value, rx in table if rx.search(lo)}
        if found:
            claims[key] = found
    shapes = {a or b for a, b in _SHAPE.findall(lo)}
    if shapes:
        claims["shape"] = shapes
    margins = set(_MARGIN.findall(lo))
    if margins:
        claims["margin"] = margins
    hu = _HU.findall(text or "")
    if hu:
        claims["hu"] = {int(v) for v in hu}
    return claims


def claims_agree(claims: dict[str, object], look: Look) -> bool:
    """Whether every claim equals what the measurements support."""
    for key, said in claims.items():
        if key == "hu":
            if look.mean_hu is None or any(abs(v - look.mean_hu) > 1 for v in said):  # type: ignore[union-attr]
                return False
        elif said != {getattr(look, key)}:
            return False
    return True


#: ontology fragments a caption must never carry ("Is a: ...", "is_a", "derives_from")
ONTOLOGY_FRAGMENT = re.compile(r"\b(?:is a:|is_a\b|derives_from|has_symptom|located_in)", re.IGNORECASE)


def distinct_n(texts: Iterable[str], n: int = 2) -> float:
    grams: list[tuple[str, ...]] = []
    for t in texts:
        words = re.findall(r"[a-z0-9%'-]+", (t or "").lower())
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def sentence_shares(texts: list[str]) -> Counter:
    """Sentence -> number of captions containing it."""
    counts: Counter = Counter()
    for t in texts:
        counts.update(set(sentences(t)))
    return counts


def caption_quality(
    records: list[tuple[str, str, Measurements | None]], findings: list[list[str]] | None = None
) -> dict[str, float | int | str]:
    """Figures over ``(caption, colour/texture section, measurements)`` records; with `findings`
    (each record's recorded image labels) also the share of captions naming an unrecorded disease."""
    n = len(records)
    with_claim = agreeing = 0
    for caption, texture, m in records:
        claims = read_claims(texture or caption)
        if claims:
            with_claim += 1
            agreeing += claims_agree(claims, assess(m))
    texts = [c for c, _, _ in records]
    shares = sentence_shares(texts)
    top, top_n = shares.most_common(1)[0] if shares else ("", 0)
    out: dict[str, float | int | str] = {
        "captions": n,
        "appearance_claim_share": with_claim / n if n else 0.0,
        "claims_agreeing_share": agreeing / with_claim if with_claim else 1.0,
        "distinct_2": distinct_n(texts, 2),
        "max_sentence_share": top_n / n if n else 0.0,
        "most_repeated_sentence": top,
    }
    for name, rx in ARTEFACTS.items():
        out[f"artefacts_{name}"] = sum(1 for t in texts if rx.search(t))
    out["ontology_fragments"] = sum(1 for t in texts if ONTOLOGY_FRAGMENT.search(t))
    if findings is not None:
        from medtrinity_assets.knowledge.mentions import unrecorded_diseases
        from medtrinity_assets.knowledge.vocabulary import load_vocabulary

        vocabulary = load_vocabulary()
        wrong = sum(1 for t, labels in zip(texts, findings, strict=True) if unrecorded_diseases(t, labels, vocabulary))
        out["unrecorded_disease_share"] = wrong / n if n else 0.0
    return out
