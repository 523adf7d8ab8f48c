"""Claims about what the image is and what it shows: modality, organs, subject, size, counts."""

from __future__ import annotations

import math
import re
from functools import lru_cache

from medtrinity_assets.records import CaptionFacts

from ..labels import is_parts, structure_name
from ..vocab import (
    ADJACENT_REGIONS,
    COMPATIBLE_MODALITIES,
    ORGAN_REGIONS,
    label_text,
    modality_families,
    modality_mentions,
    organs_named,
    regions_of,
    unique,
    word_stems,
)
from .base import CaptionView, alternation, mentions, names_organ, sentences

# ----------------------------------------------------------------------------- modality

_THIS_IMAGE = re.compile(
    r"\b(?:this|the present|the current|on the|in the)\b[^.]{0,40}?\b(?:image|scan|slice|study|examination|section|view)\b", re.I
)
_PHYSICS = re.compile(r"\bX-?rays?[\s-]+(?:attenuation|absorption|beams?|tubes?|dose|photons|density)\b", re.I)  # CT is X-ray physics
_DEICTIC = re.compile(r"\b(?:this|the present|the current|here)\b", re.I)


def allowed_families(modality: str) -> set[str]:
    families = modality_families(modality)
    allowed = set(families)
    for f in families:
        allowed |= COMPATIBLE_MODALITIES.get(f, frozenset())
    return allowed


def modality_claims(description: str, modality_section: str) -> set[str]:
    """Families the text names as the image's own modality (modality section, first sentence, "this ... image")."""
    parts = [modality_section]
    sents = sentences(description)
    if sents:
        parts.append(sents[0])
    parts += [s for s in sents[1:] if _THIS_IMAGE.search(s)]
    claims: set[str] = set()
    for p in parts:
        claims |= modality_mentions(p)
    return claims


def modality_problems(description: str, sections: dict[str, str], facts: CaptionFacts) -> list[str]:
    """``missing_modality`` / ``wrong_modality`` from the modality section and "this image" sentences."""
    if not (facts.modality or "").strip():
        return []
    families = modality_families(facts.modality)
    problems = []
    if families:
        if not (modality_mentions(description) & families):
            problems.append("missing_modality")
        if modality_claims(description, sections.get("modality", "")) - allowed_families(facts.modality):
            problems.append("wrong_modality")
    elif facts.modality.strip().lower() not in description.lower():
        problems.append("missing_modality")
    return problems


def foreign_modality(view: CaptionView) -> bool:
    """Another modality named anywhere as this image's (any sentence, any section), or a word that
    only fits another modality (``T2-weighted``, ``hypoechoic``, ``Hounsfield`` on the wrong one)."""
    families = modality_families(view.facts.modality or "")
    if not families:
        return False
    allowed = allowed_families(view.facts.modality)
    comparison = alternation(tuple(view.lex["modality_comparison"]))
    for s in view.claim_sentences:
        named = mentions(_PHYSICS.sub(" ", s)) - allowed
        if named and (_DEICTIC.search(s) or not (comparison and comparison.search(s)) and not view.is_generic(s)):
            return True
    for s in view.image_sentences:
        for entry in view.lex["modality_terms"]:
            if families & set(entry["wrong_in"]) and not families & allowed_families_of(entry) and re.search(entry["pattern"], s, re.I):
                return True
    return False


def allowed_families_of(entry: dict) -> set[str]:
    return set()  # a term is wrong in its `wrong_in` families; kept as a hook for exceptions


# ----------------------------------------------------------------------------- organs / subject


def organ_problems(view: CaptionView) -> list[str]:
    description, sections, facts, config = view.text, view.sections, view.facts, view.config
    problems = []
    roi = view.roi
    named = unique([*facts.organs, roi, *facts.other_rois])
    stems = word_stems(description)
    if named and not any(names_organ(stems, n) for n in named):
        problems.append("missing_organ")
    if config.check_organ_region:
        regions = regions_of(named)
        if regions and "*" not in regions:
            allowed = set().union(*(ADJACENT_REGIONS.get(r, frozenset({r})) for r in regions))
            said = organs_named(word_stems(" ".join([description, *sections.values()])))
            supported = word_stems(" ".join([*named, *facts.image_labels, facts.coarse_caption]))
            if any(ORGAN_REGIONS[o] not in allowed and o not in supported for o in said):
                problems.append("wrong_organ")
    if config.check_roi_label and roi and not names_organ(stems, roi):
        problems.append("missing_roi_label")
    return problems


def _subject_name(raw: str, lex: dict) -> str:
    stop = set(lex["subject_stop_words"])
    words = []
    for w in re.split(r"\s+", raw.strip().lower()):
        w = w.strip(",.;:")
        if not w or w in stop:
            break
        words.append(w)
    return " ".join(words[:5])


_SUBJECT_CUE = re.compile(r"\b(?:interest|attention|focus\w*|ROI|centred|centered|concentrat\w*|target)\b", re.I)


@lru_cache(maxsize=8)
def _subject_patterns(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(r"\b" + p, re.I) for p in patterns)


def wrong_subject(view: CaptionView) -> bool:
    """The caption names another structure as the ROI ("the structure of interest is the spleen")."""
    if not view.roi:
        return False
    patterns = _subject_patterns(tuple(view.lex["subject_patterns"]))
    support = word_stems(" ".join([label_text(view.roi), *[label_text(x) for x in view.facts.image_labels]]))
    if view.facts.roi_concept is not None:
        support |= word_stems(view.facts.roi_concept.name)
    ignore = set(view.lex["subject_ignore"])
    for s in view.claim_sentences:
        if not _SUBJECT_CUE.search(s):
            continue
        for m in (m for rx in patterns for m in rx.finditer(s)):
            name = _subject_name(m.group("name"), view.lex)
            stems = word_stems(name) - {"left", "right", "the", "a", "an"}
            if not stems or stems <= ignore:
                continue
            if names_organ(word_stems(name), view.roi) or stems & support:
                continue
            return True
    return False


# ----------------------------------------------------------------------------- sizes

_NUM = r"(?P<n1>\d+(?:\.\d+)?)(?:\s*(?:x|×|by|-|to)\s*(?P<n2>\d+(?:\.\d+)?))?"
_LENGTH = re.compile(_NUM + r"\s*(?P<unit>mm|cm|millimet(?:re|er)s?|centimet(?:re|er)s?)(?![\w²])(?!\s*(?:2|squared))", re.I)
_AREA = re.compile(_NUM + r"\s*(?P<unit>mm²|mm2|cm²|cm2|square (?:millimet|centimet)(?:re|er)s?|(?:mm|cm) squared)", re.I)
_PIXELS = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?:\s*(?:to|-|–)\s*(?P<n2>\d+(?:\.\d+)?))?\s*(?:pixels?|px)\b(?!\s*(?:2|squared|²))", re.I)
_PERCENT = re.compile(r"(?P<cmp>less than|under|below|more than|over|above|at least|at most|nearly|almost|about|around|roughly|approximately|~)?\s*(?P<n>\d+(?:\.\d+)?)\s*(?:%|percent|per cent)", re.I)


def _mm(value: float, unit: str) -> float:
    return value * 10.0 if unit.lower().startswith("c") else value


def _spacing_known(view: CaptionView) -> bool:
    m = view.measurements
    return bool(view.facts.spacing_mm or (m and (m.area_mm2 or m.equivalent_diameter_mm)) or (view.facts.frame and view.facts.frame.spacing_rc))


def _diameter_mm(view: CaptionView) -> float | None:
    m = view.measurements
    if m and m.equivalent_diameter_mm:
        return float(m.equivalent_diameter_mm)
    spacing = view.facts.spacing_mm or (view.facts.frame.spacing_rc if view.facts.frame else None)
    if m and m.area_px and spacing:
        return 2.0 * math.sqrt(m.area_px * spacing[0] * spacing[1] / math.pi)
    return None


def size_problems(view: CaptionView) -> list[str]:
    """``unsupported_size`` (a physical size with no pixel spacing) and ``size_contradiction``."""
    th = view.th["sizes"]
    problems: set[str] = set()
    known = _spacing_known(view)
    d = _diameter_mm(view)
    m = view.measurements
    area_cue = re.compile(view.lex["area_cues"], re.I)
    for s in view.image_sentences:
        lengths = [_mm(float(x.group("n2") or x.group("n1")), x.group("unit")) for x in _LENGTH.finditer(s)]
        lengths += [_mm(float(x.group("n1")), x.group("unit")) for x in _LENGTH.finditer(s) if x.group("n2")]
        areas = [float(x.group("n1")) * (100.0 if x.group("unit").lower().startswith("c") else 1.0) for x in _AREA.finditer(s)]
        if (lengths or areas) and not known:
            problems.add("unsupported_size")
            continue
        group = bool(m and m.instance_count and m.instance_count > 1)
        if group and not (view.names_other(s) and not view.names_roi(s)):  # each length is one instance's (+-10%, rounding)
            px = [float(v) for x in _PIXELS.finditer(s) for v in (x.group("n"), x.group("n2")) if v]
            for said, low, high in ((lengths, m.instance_diameter_min_mm, m.instance_diameter_max_mm), (px, m.instance_diameter_min_px, m.instance_diameter_max_px)):
                if said and (low is None or high is None or any(not 0.9 * low - 1 <= v <= 1.1 * high + 1 for v in said)):
                    problems.add("size_contradiction")
            continue
        if not view.about_roi(s) or view.names_other(s) and not view.names_roi(s):
            continue
        if d and lengths:
            e = m.elongation if m and m.elongation else None
            if e:
                lo, hi = d * math.sqrt(e) * th["length_low"], d / math.sqrt(e) * th["length_high"]
            else:
                lo, hi = d * th["length_band_without_shape"][0], d * th["length_band_without_shape"][1]
            if any(not lo <= L <= hi for L in lengths):
                problems.add("size_contradiction")
        if m and m.area_mm2 and areas:
            lo, hi = th["area_band"]
            if any(not lo <= a / m.area_mm2 <= hi for a in areas):
                problems.add("size_contradiction")
    frac = view.facts.roi_area_frac
    if frac is not None:
        true = 100.0 * frac
        for s in view.image_sentences:
            if not area_cue.search(s) or (view.names_other(s) and not view.names_roi(s)):
                continue
            for x in _PERCENT.finditer(s):
                if not _percent_agrees(float(x.group("n")), (x.group("cmp") or "").lower(), true, th):
                    problems.add("size_contradiction")
            for word, value in view.lex["fraction_words"].items():
                if re.search(rf"\b(?:about |roughly |nearly |almost |around )?{word} of the (?:image|field|frame|slice|view)", s, re.I):
                    if not _percent_agrees(float(value), "", true, th):
                        problems.add("size_contradiction")
    return sorted(problems)


def _percent_agrees(said: float, cmp: str, true: float, th: dict) -> bool:
    tol = max(th["percent_abs"], th["percent_rel"] * true)
    if cmp in ("less than", "under", "below", "at most"):
        return true <= said + tol
    if cmp in ("more than", "over", "above", "at least"):
        return true >= said - tol
    return abs(said - true) <= tol


# ----------------------------------------------------------------------------- counts


_NUMERALS = {str(i): i for i in range(0, 1000)}
_TOTAL_BEFORE = re.compile(
    r"\b(?:shows?|showing|contains?|containing|depicts?|depicting|with|there (?:are|is)|one of|among|total of|count of|of the|all|together(?:,)? the)"
    r"\s+(?:about |approximately |roughly |around |some |only |exactly |at least |nearly )?$"
)
_SENTENCE_THE = re.compile(r"(?:^|[.;:]\s+)the\s+$")  # "The 125 nuclei lie ...": a total
_TOTAL_AFTER = re.compile(
    r"\w+\s+(?:(?:are|is) (?:seen|visible|present|shown|identified|depicted|counted|scattered|spread|distributed|in (?:the )?(?:view|image|field))"
    r"|lie (?:throughout|over|in|across)|(?:together )?(?:cover|take up|make up)|in (?:the |this )?(?:image|view|field))"
)


def _counts_parts_as_structures(view: CaptionView, numbers: dict[str, int]) -> bool:
    """A number of two or more before the ROI structure's plural ("two livers", "both left hip bones")."""
    many = structure_name(view.roi).many.lower()
    if not many or many == structure_name(view.roi).one.lower():
        return False
    counts = "|".join(sorted((re.escape(w) for w, n in numbers.items() if n >= 2 and not w.isdigit()), key=len, reverse=True))
    said = re.compile(rf"\b(?:{counts}|[2-9]|\d\d+)\s+(?:[a-z]+\s+){{0,2}}?{re.escape(many)}\b")
    return any(said.search(s.lower()) for s in view.image_sentences)


def count_problems(view: CaptionView, recorded_findings: list[str]) -> bool:
    """Invented counts: a second/another lesion, or a number of the ROI's structure far from the record."""
    lex, th = view.lex, view.th["counts"]
    m = view.measurements
    extra = alternation(tuple(lex["extra_lesion"]))
    negator = re.compile(view.lex["appearance_negators"], re.I)
    multi_recorded = bool(m and ((m.n_components or 1) > 1 or (m.label_count or 1) > 1)) or len(recorded_findings) > 1
    lesion_nouns = set(lex["lesion_nouns"])
    numbers = {**lex["count_words"], **_NUMERALS}
    roi_words = {w for w in re.findall(r"[a-z]+", label_text(view.roi).lower())}
    if is_parts(m, view.roi) and _counts_parts_as_structures(view, numbers):
        return True  # "the two livers": one liver the slice cuts into pieces
    for s in view.image_sentences:
        low = s.lower()
        for x in extra.finditer(low) if extra else ():
            before = low[max(0, x.start() - 20) : x.start()]
            if not negator.search(before) and not multi_recorded:
                return True
        for x in re.finditer(r"\b(?P<num>[a-z]+|\d+)\s+(?=(?:(?:small|large|separate|distinct|discrete|visible|similar|further|other)\s+)?(?P<noun>[a-z]+)\b)", low):
            n = numbers.get(x.group("num"))
            noun = x.group("noun")
            if n is None or x.group("num") in ("one", "single", "both", "pair") or noun in ("of", "and", "or", "to"):
                continue
            before = low[max(0, x.start() - 20) : x.start()]
            if negator.search(before):
                continue
            if noun in lesion_nouns and n >= 2 and not multi_recorded:
                return True
            forms = {noun, noun.rstrip("s"), noun[:-2] if noun.endswith("es") else noun, noun[:-1] + "us" if noun.endswith("i") else noun}
            total = _TOTAL_BEFORE.search(low[max(0, x.start() - 40) : x.start()]) or _TOTAL_AFTER.match(low, x.end())
            total = total or _SENTENCE_THE.search(low[: x.start()])
            if roi_words and forms & roi_words and m and m.label_count and total:
                true = m.label_count
                if abs(n - true) > max(th["abs"], th["rel"] * true):
                    return True
        many = "|".join(lex["many_words"])
        if re.search(rf"\b(?:{many})\s+(?:\w+\s+)?(?:{'|'.join(lesion_nouns)})\b", low) and not multi_recorded:
            if not negator.search(low[:40]):
                return True
    return False
