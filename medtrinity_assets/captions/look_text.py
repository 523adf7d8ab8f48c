"""Appearance sentences (the colour/texture section) worded from a typed `appearance.Look`.

Every sentence states a measured property relative to the surroundings, with the cautious words
of data/appearance.yaml; a property the measurements do not support is not mentioned. When
nothing can be said, one sentence says so without claiming anything about the look.
"""

from __future__ import annotations

import random
import re

from medtrinity_assets.records import CaptionFacts

from .appearance import Look, compared_to, diameter_words, comparison_candidates, standardised_difference
from .colour_names import words_of
from .data_files import appearance, template_fields, wording
from .labels import Name, conjugations, number_words, structure_name


_GRAMMAR = frozenset({*conjugations(False), "name", "Name", "name_one", "a_modality", "A_modality", "a_shape", "surround", "is_region", "are_items", "appear_items"})
_SAME_FACT = {"Share_cap": "share", "share_of": "share", "Count": "count", "a_plane": "plane", "a_texture": "texture", "contrast_apart": "contrast"}  # capitalised / article forms of one fact


def fill(key: str, values: dict[str, str], rng: random.Random, sub: str | None = None) -> str:
    """A variant of `sentences.<key>` whose placeholders all have values, filled; ``""`` if none fits.

    Among the fitting variants only those using the most facts are candidates, so a variant
    never drops a fact another one would state; the seeded `rng` picks among them.
    """
    usable = []
    for v in wording().variants(key, sub):
        fields = template_fields(v)
        if all(values.get(f) for f in fields):
            usable.append((len({_SAME_FACT.get(f, f) for f in fields} - _GRAMMAR), v))
    if not usable:
        return ""
    most = max(n for n, _ in usable)
    return rng.choice([v for n, v in usable if n == most]).format(**values)


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def form(forms: str | tuple[str, ...] | list[str], rng: random.Random | None) -> str:
    """One of equivalent wordings: the reference form (the first) without `rng`, else a seeded pick."""
    if isinstance(forms, str):
        return forms
    if not forms:
        return ""
    return forms[0] if rng is None else forms[rng.randrange(len(forms))]


def surround_words(facts: CaptionFacts, family: str | None, rng: random.Random | None = None) -> str:
    """What the ring around the ROI is, as far as the facts say (``the surrounding liver``)."""
    s = wording().surround
    within = next((r.other for r in facts.relations if r.kind == "within"), None)
    if within:
        return form(s.within, rng).format(other=structure_name(within).one)
    unit = facts.measurements.intensity_unit if facts.measurements else None
    if unit == "rgb" and family in ("dermoscopy", "fundus", "endoscopy") and facts.organs:
        return form(s.rgb, rng).format(organ=structure_name(facts.organs[0]).one)
    if family == "microscopy" and unit == "relative":
        return form(s.microscopy, rng)
    return form(s.default, rng)


_LINK = re.compile(r"\s+(?:than|relative to|compared with|to)$")


def contrast_head(template: str) -> str:
    """The words of a contrast form without its surround: ``hypodense relative to {surround}`` ->
    ``hypodense`` (what "Compared with the surrounding tissue, it is ..." needs)."""
    return _LINK.sub("", template.split("{surround}")[0].strip())


def contrast_words(look: Look, family: str | None, surround: str, rng: random.Random | None = None) -> tuple[str, str]:
    """``(hypodense relative to the surrounding tissue, hypodense)``: the contrast with its surround
    and without it (``""`` for no contrast; the short form only for darker/brighter)."""
    cfg = appearance()
    words = cfg.intensity_words.get(family or "", cfg.intensity_words["default"])
    if look.contrast is None:
        return "", ""
    template = form(getattr(words, look.contrast), rng)
    degree = cfg.degree.get(look.degree or "", "")
    short = contrast_head(template) if look.contrast != "similar" else ""
    return degree + template.format(surround=surround), (degree + short if short else "")


def band_words(reference: str | None, rng: random.Random | None) -> str:
    """One wording of a CT range given its reference form (`Look.hu_band`)."""
    band = next((b for b in appearance().ct_bands if b.words[0] == reference), None)
    return form(band.words, rng) if band else ""


def values_for(name: Name, look: Look, facts: CaptionFacts, family: str | None, rng: random.Random | None = None) -> dict[str, str]:
    """Placeholder values of the appearance sentences; `rng` picks among equivalent wordings."""
    cfg = appearance()
    surround = surround_words(facts, family, rng)
    shape = form(cfg.shape_words.get(look.shape or "", ()), rng)
    contrast, short = contrast_words(look, family, surround, rng)
    values = {
        **conjugations(name.plural),
        "name": name.text,
        "Name": capitalise(name.text),
        "surround": surround,
        "contrast": contrast,
        "contrast_short": short,
        "contrast_apart": contrast if look.contrast in ("darker", "brighter") else "",  # "sets it apart" is no place for "similar"
        "hu": str(round(look.mean_hu)) if look.mean_hu is not None else "",  # round(-0.4) is 0, not "-0"
        "band": band_words(look.hu_band, rng),
        "texture": form(cfg.texture_words.get(look.texture or "", ()), rng),
        "shape": shape,
        "a_shape": with_article(shape),
        "margin": form(cfg.margin_words.get(look.margin or "", ()), rng),
        "parts": number_words(look.parts) if look.parts else "",
        "colour": form(cfg.colour_words.get(look.colour or "", ()), rng),
        "colour_name": form(words_of(look.colour_name), rng),
        "ring_colour_name": form(words_of(look.ring_colour_name), rng),
        "diameter": diameter_words(look.diameter_mm) if look.diameter_mm is not None else "",
        "axes": axes_words(look, facts.measurements),
    }
    values["a_texture"] = with_article(values["texture"])
    return values


def with_article(word: str) -> str:
    """``an oval``, ``a uniform``, ``a round`` (by sound: uni-/use-/eu-/one take "a"); "" for ""."""
    if not word:
        return ""
    vowel = word[:1].lower() in "aeiou" and not re.match(r"(?i)(?:uni|use|usu|eu|one)", word)
    return ("an " if vowel else "a ") + word


def axes_words(look: Look, m) -> str:
    """``60 × 35 mm``: the in-plane axes of the ellipse with the ROI's area and elongation (major =
    equivalent diameter / sqrt(elongation), minor = x sqrt(elongation)); only for a clearly
    non-round ROI in one piece with a size in mm."""
    if look.diameter_mm is None or look.shape is None or m is None or not m.elongation or m.elongation >= 0.85:
        return ""
    e = float(m.elongation) ** 0.5
    major, minor = look.diameter_mm / e, look.diameter_mm * e
    if major >= 100:
        return f"{major / 10:.1f} × {minor / 10:.1f} cm".replace(".0 ", " ").replace(".0 cm", " cm")
    return f"{major:.0f} × {minor:.0f} mm" if minor >= 2 else f"{major:.1f} × {minor:.1f} mm"


def size_sentence(name: Name, look: Look, facts: CaptionFacts, rng: random.Random) -> str:
    """``It measures about 42 mm across.`` where pixel spacing made a size in mm possible."""
    if look.diameter_mm is None:
        return ""
    return fill("size", values_for(name, look, facts, None, rng), rng)


def look_sentences(name: Name, look: Look, facts: CaptionFacts, family: str | None, rng: random.Random) -> list[str]:
    """The appearance sentences of one ROI, in a record-dependent order."""
    v = values_for(name, look, facts, family, rng)
    out: list[str] = []
    merged = fill("intensity_colour", v, rng) if look.contrast and look.colour and v["contrast_short"].endswith(("darker", "brighter")) else ""
    if merged:  # one comparison with the surround, not two sentences repeating it
        out.append(merged)
    elif look.contrast:
        out.append(fill("intensity", v, rng))
    if look.mean_hu is not None:
        out.append(fill("attenuation" if look.hu_band else "attenuation_only", v, rng))
    if look.colour and not merged:
        out.append(fill("colour", v, rng))
    named_apart = bool(look.colour_name and look.ring_colour_name and look.colour_name != look.ring_colour_name)
    if look.colour_name:  # "like the surrounding skin" only where no colour difference is stated either
        alike = look.ring_colour_name == look.colour_name and not (look.colour or look.hue_differs)
        key = "colour_name_contrast" if named_apart else "colour_name_same" if alike else "colour_name_only"
        out.append(fill(key, v, rng))
    if look.hue_differs and not named_apart:  # two different colour names already state the difference
        out.append(fill("hue", v, rng))
    tail: list[str] = []
    if look.texture and look.shape and look.margin and rng.random() < 0.5:  # one sentence for all three
        tail.append(fill("texture_shape_margin", v, rng))
    else:
        if look.texture:
            tail.append(fill("texture", v, rng))
        if look.shape and look.margin:
            tail.append(fill("shape_margin", v, rng))
        elif look.shape:
            tail.append(fill("shape", v, rng))
        elif look.margin:
            tail.append(fill("margin", v, rng))
    if look.parts:
        tail.append(fill("parts", v, rng))
    if rng.random() < 0.5:
        tail.reverse()
    ordered = tail + out if tail and rng.random() < 0.3 else out + tail  # outline/texture first, sometimes
    return [s for s in ordered if s]


def comparison_sentence(name: Name, facts: CaptionFacts, family: str | None, rng: random.Random) -> str:
    """The ROI's brightness against one alike structure of the image ("It is hypodense relative to
    the spleen."): the first of `appearance.comparison_candidates` (alike structures it relates to
    or touches, then the others of its class) whose measured mean (`CaptionFacts.other_intensities`)
    gives a reliable reading (`appearance.compared_to`) within ``compare_max_contrast``, on CT with
    the other's mean in HU; "" when none does."""
    m, cfg = facts.measurements, appearance()
    if m is None:
        return ""
    for other in comparison_candidates(facts):
        reading = compared_to(m, other)
        if reading and abs(standardised_difference(m, other)) < cfg.compare_max_contrast:  # type: ignore[arg-type]
            words = cfg.intensity_words.get(family or "", cfg.intensity_words["default"])
            that = structure_name(other.label)
            comparison = form(getattr(words, reading), rng).format(surround="the " + that.text)
            values = {**conjugations(name.plural), "name": name.text, "Name": capitalise(name.text), "comparison": comparison}
            if other.unit == "HU" and not that.plural:  # the other's mean too: "..., which measures about 30 HU"
                return fill("comparison_hu", {**values, "other_hu": str(round(other.mean))}, rng)
            return fill("comparison", values, rng)
    return ""


def no_look_sentence(name: Name | None, facts: CaptionFacts, rng: random.Random) -> str:
    """A sentence for a record whose look could not be measured (no claim about it)."""
    if name is None:
        return fill("no_measure_whole", {}, rng)
    v = {**conjugations(name.plural), "name": name.text, "Name": capitalise(name.text)}
    return fill("no_measure", v, rng)
