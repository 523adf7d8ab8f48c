"""Caption quality figures: appearance claims and their agreement with measurements, diversity,
repetition and wording artefacts (issue 11's targets; printed by bench/caption_report.py and
attached to the `triplets` asset as metadata).

- appearance claim: the colour/texture text states brightness (darker / brighter / hypo- /
  hyper- / similar in ...), texture (homogeneous / heterogeneous), outline or margins, colour
  (deeper / paler, or the name of the ROI's or the ring's mean colour) or a mean HU value
- agreement: every claim read from the text equals what `appearance.assess` derives from the
  record's measurements (mean HU within 1 HU)
- distinct-2: distinct word bigrams / all word bigrams over all captions; it falls as a corpus
  grows, so ``distinct_2_at_50`` is also given: the mean over 20 random samples of 50 captions
  (all captions when fewer), comparable across shards and corpora of different sizes
- max sentence share: the largest share of captions containing one identical sentence
- artefacts: ``#n`` instance numbers, ``(image side)``, any parenthetical, ``+`` or ``_`` in words, raw label order
  (a side word after the structure: ``ventricle left``)
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from medtrinity_assets.records import Measurements

from .appearance import Look, assess
from .colour_names import stated_colours
from .data_files import appearance
from .look_text import contrast_head
from .checks import sentences

_SHAPE_END = r"(?= outline| in outline| with|, and| and|,|\.)"


def _alternation(forms) -> str:
    return "|".join(re.escape(f) for f in sorted(set(forms), key=len, reverse=True))


@lru_cache(maxsize=1)
def _readers() -> dict[str, tuple[tuple[str, re.Pattern[str]], ...]]:
    """Per claim category, (reading, pattern) pairs built from every form in data/appearance.yaml
    (the composer's words); earlier readings win over later ones in the same words."""
    cfg = appearance()
    heads: dict[str, set[str]] = {"darker": set(), "brighter": set(), "similar": set()}
    for words in cfg.intensity_words.values():
        for key in heads:
            for template in getattr(words, key):
                heads[key].add(contrast_head(template))
    plain = {k: {h for h in v if h not in ("darker", "brighter")} for k, v in heads.items()}
    contrast = []
    for key in ("darker", "brighter"):  # a bare comparative only before "than" or at a sentence end
        bare = rf"{key}(?=(?: and [a-z ]+)? than|(?: and [a-z ]+)?\.)"
        contrast.append((key, re.compile(rf"\b(?:{bare}|{_alternation(plain[key])})\b")))
    contrast.append(("similar", re.compile(rf"\b(?:{_alternation(plain['similar'])})\b")))

    def table(name: str, order: tuple[str, ...], end: str = "") -> tuple[tuple[str, re.Pattern[str]], ...]:
        forms = getattr(cfg, name)
        return tuple((k, re.compile(rf"\b(?:{_alternation(forms[k])})\b{end}")) for k in order if k in forms)

    return {
        "contrast": tuple(contrast),
        "texture": table("texture_words", ("mild", "heterogeneous", "homogeneous")),
        "colour": table("colour_words", tuple(cfg.colour_words)),
        "shape": table("shape_words", tuple(cfg.shape_words), _SHAPE_END),
        "margin": table("margin_words", tuple(cfg.margin_words)),
    }


def _shape_of(word: str) -> str | None:
    """The shape reading a written form names (``ovoid`` -> ``oval``), or None."""
    return next((k for k, forms in appearance().shape_words.items() if word in forms), None)


_OUTLINE_IS = re.compile(r"outline (?:is|are) ([a-z]+)")
_HU = re.compile(r"\babout (-?\d+) HU\b")
ARTEFACTS = {
    "instance_number": re.compile(r"#\d"),
    "image_side_parenthetical": re.compile(r"\(image side\)"),
    "parenthetical": re.compile(r"\([^()]*\)"),  # any aside in parentheses ("(TB)", "(or glutæus maximus)")
    "plus_or_underscore": re.compile(r"\w[+_]\w"),
    "reversed_label": re.compile(r"\b(?:ventricle|atrium|lobe|kidney|lung|hip|femur|autochthon|iliopsoas|maximus|rib) (?:left|right)\b"),
}


def read_claims(text: str) -> dict[str, object]:
    """Appearance claims stated in a text (category -> set of readings), read with every wording
    the composer may use (data/appearance.yaml); matched words are consumed, so "mildly
    heterogeneous" is read once, as mild."""
    lo = (text or "").lower()
    claims: dict[str, object] = {}
    for category, readers in _readers().items():
        found: set[str] = set()
        rest = lo
        if category == "shape":  # a shape word counts where it describes an outline
            found |= {_shape_of(w) for w in _OUTLINE_IS.findall(rest)} - {None}
        for value, rx in readers:
            if rx.search(rest):
                found.add(value)
                rest = rx.sub(" ", rest)
        if found:
            claims[category] = found
    named = {entry.name for entry in stated_colours(lo)}
    if named:
        claims["colour_name"] = named
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
        elif key == "colour_name":
            if not said <= {look.colour_name, look.ring_colour_name} - {None}:  # type: ignore[operator]
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


def distinct_n_sampled(texts: list[str], n: int = 2, size: int = 50, draws: int = 20, seed: int = 0) -> float:
    """Mean distinct-n over `draws` random samples of `size` texts: distinct-n falls as a corpus
    grows, so corpora of different sizes are compared at one size (all texts when fewer)."""
    if len(texts) <= size:
        return distinct_n(texts, n)
    rng = random.Random(seed)
    return sum(distinct_n(rng.sample(texts, size), n) for _ in range(draws)) / draws


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
        "distinct_2_at_50": distinct_n_sampled(texts, 2, 50),
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
