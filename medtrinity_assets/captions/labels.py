"""How structures, counts and places are worded in a caption (tables in data/labels.yaml and
data/wording.yaml).

- `structure_name(label)`  natural wording of a label: separators as spaces, side words first,
  ordinals for numbered structures, overrides from the data (``heart_ventricle_left`` -> ``left
  heart ventricle``, ``rib_left_9`` -> ``left 9th rib``, ``vertebrae_T9`` -> ``T9 vertebra``)
- `roi_name(label, measurements)`  the name of one ROI: a single connected mask of a plural label
  is named in the singular where the data says so (one "lungs" mask is a ``lung field``)
- `structure_key(label)`  the structure a label names, without sides, numbers or levels
- `vertebral_levels(labels)`  the spinal levels named by numbered vertebra labels (``vertebrae_L2``
  -> ``L2``), cranial to caudal; `slice_levels(facts)` those an axial slice passes through
- `is_plural`, `conjugations`  verb agreement
- `image_place(row, col)`, `patient_place(position)`  a typed `GridPosition` as image-frame words
  (the cell's sides from the position grid, `medtrinity_assets.grid`) and patient-frame words
  where the display frame allowed them
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medtrinity_assets.grid import position_grid
from medtrinity_assets.records import GridPosition, Measurements

from .data_files import labels, wording
from .vocab import stem

_SPLIT = re.compile(r"[_+\s]+")
_NUMBER = re.compile(r"^\d+$")
_LEVEL = re.compile(r"^[CTLS]\d{1,2}$", re.I)


@dataclass(frozen=True)
class Name:
    """A structure's wording: `text` as used, its singular and plural forms, and its number."""

    text: str
    one: str
    many: str
    plural: bool


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def roi_label_of(facts) -> str | None:
    """The ROI label of `CaptionFacts`, or None for a whole-image request (None or blank label)."""
    label = (facts.roi_label or "").strip()
    return label or None


def plural_of(noun_phrase: str) -> str:
    """Plural of a noun phrase (its last word): ``blood vessel`` -> ``blood vessels``."""
    data = labels()
    words = noun_phrase.split()
    if not words:
        return noun_phrase
    last = words[-1]
    low = last.lower()
    if low in data.plurals:
        plural = data.plurals[low]
    elif low.endswith(("s", "x", "ch", "sh")) and low not in data.singular_s:
        plural = last + "es" if not low.endswith("s") or low in data.singular_s else last
    elif low.endswith("s"):
        plural = last + "es"
    elif low.endswith("y") and len(low) > 2 and low[-2] not in "aeiou":
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return " ".join([*words[:-1], plural])


def _looks_plural(word: str) -> bool:
    data = labels()
    low = word.lower()
    if low in data.singular_s or low in data.plurals:
        return False
    if low in data.plurals.values():
        return True
    return len(low) > 3 and low.endswith("s") and not low.endswith(("ss", "us", "is"))


def _words(label: str) -> list[str]:
    words = [w for w in _SPLIT.split((label or "").strip()) if w]
    return [w if (_LEVEL.match(w) or (w.isupper() and len(w) > 1)) else w.lower() for w in words]


def structure_name(label: str) -> Name:
    """The natural wording of a structure label (see the module docstring)."""
    data = labels()
    words = _words(label)
    if not words:
        return Name("", "", "", False)
    sides = [w for w in words[1:] if w in data.side_words]
    core = [w for w in words if w not in sides] if sides else list(words)
    number = ""
    if len(core) >= 2 and _NUMBER.match(core[-1]) and core[-2] in data.numbered:
        number, core = _ordinal(int(core[-1])), core[:-1]
    level = ""
    if len(core) == 2 and core[0] == data.vertebra_prefix and _LEVEL.match(core[1]):
        level, core = core[1].upper(), ["vertebra"]
    key = " ".join(core)
    entry = data.names.get(key)
    prefix = " ".join([*sides, number, level]).split()
    if entry is not None:
        plural = entry.plural or key == entry.many.lower() or (key != entry.one.lower() and _looks_plural(core[-1]))
        one, many = entry.one, entry.many
    else:
        plural = _looks_plural(core[-1]) and not level
        one = " ".join([*core[:-1], stem(core[-1])]) if plural else key
        many = key if plural else plural_of(key)
    lead = " ".join(prefix)
    one_text = f"{lead} {one}".strip()
    many_text = f"{lead} {many}".strip()
    return Name(many_text if plural else one_text, one_text, many_text, plural)


def structure_key(label: str) -> str:
    """A label's structure without side words, numbers or spinal levels (``kidney_left`` ->
    ``kidney``, ``rib_left_9`` -> ``rib``, ``vertebrae_L2`` -> ``vertebrae``): what the
    comparison classes of data/appearance.yaml list."""
    words = [w for w in _words(label) if w not in labels().side_words and not _NUMBER.match(w) and not _LEVEL.match(w)]
    return " ".join(words).lower()


def side_of(label: str) -> str | None:
    """The side word a label carries (``kidney_left`` -> ``left``), or None."""
    return next((w for w in _words(label) if w in labels().side_words), None)


_SPINE_ORDER = "CTLS"


def vertebral_level(label: str) -> str | None:
    """``L2`` for a numbered vertebra label (``vertebrae_L2``, ``vertebra L2``), else None."""
    core = [w for w in _words(label) if w not in labels().side_words]
    if len(core) == 2 and core[0] in (labels().vertebra_prefix, "vertebra") and _LEVEL.match(core[1]):
        return core[1].upper()
    return None


def vertebral_levels(structure_labels: list[str]) -> list[str]:
    """The distinct spinal levels the labels name, cranial to caudal (``["T12", "L1"]``)."""
    levels = {lv for lv in map(vertebral_level, structure_labels) if lv}
    return sorted(levels, key=lambda lv: (_SPINE_ORDER.index(lv[0]), int(lv[1:])))


def slice_levels(facts) -> list[str]:
    """The spinal levels an axial slice passes through: the numbered vertebra labels of its
    structures (ROI and other ROIs); [] for other planes or none."""
    if not facts.frame or facts.frame.plane != "axial":
        return []
    return vertebral_levels([x for x in (roi_label_of(facts), *facts.other_rois) if x])


def roi_name(label: str, measurements: Measurements | None = None) -> Name:
    """The name of one ROI of `label`: one connected mask of a plural label may be singular."""
    name = structure_name(label)
    key = " ".join(w for w in _words(label) if w not in labels().side_words)
    entry = labels().names.get(key)
    one_piece = measurements is not None and measurements.n_components == 1
    if name.plural and entry is not None and entry.single_mask and one_piece:
        text = name.text.replace(entry.many, entry.single_mask)
        return Name(text, text, plural_of(text), False)
    return name


def is_plural(name: str) -> bool:
    """Whether a worded name is grammatically plural (its last word)."""
    words = name.split()
    return bool(words) and _looks_plural(words[-1])


_VERBS = {
    "is": "are",
    "lies": "lie",
    "has": "have",
    "appears": "appear",
    "shows": "show",
    "occupies": "occupy",
    "measures": "measure",
    "borders": "border",
    "overlaps": "overlap",
    "contains": "contain",
    "covers": "cover",
    "accounts": "account",
    "spans": "span",
    "abuts": "abut",
    "touches": "touch",
    "encloses": "enclose",
    "sits": "sit",
    "its": "their",
    "Subj": "They",
    "subj": "they",
    "Its": "Their",
}


_SINGULAR = {"Subj": "It", "subj": "it"}


def conjugations(plural: bool) -> dict[str, str]:
    """Placeholder values agreeing with a singular or plural subject (``{is}``, ``{Its}``, ``{Subj}``...)."""
    return {k: (v if plural else _SINGULAR.get(k, k)) for k, v in _VERBS.items()}


def is_parts(m: Measurements | None, label: str) -> bool:
    """The label's several ROIs on the image are pieces of one structure (``count_kind: parts``);
    not for a label that names several structures ("costal cartilages", "vertebrae"), whose
    separate pieces on a slice are separate members (a left and a right costal cartilage)."""
    return bool(m is not None and m.count_kind == "parts" and (m.label_count or 0) > 1 and not structure_name(label).plural)


def part_name(label: str) -> Name:
    """One piece of a structure the slice cuts into several: ``part of the liver``."""
    one = structure_name(label).one
    return Name(f"part of the {one}", f"part of the {one}", f"parts of the {one}", False)


def count_phrase(name: Name, count: int | None, rng_index: int = 0) -> str:
    """``one of 125 nuclei in the field of view`` for an ROI whose label occurs `count` times; else ``""``."""
    if not count or count < 2:
        return ""
    w = wording().counts
    return w.one_of.format(n=number_words(count), many=name.many) + " " + w.field[rng_index % len(w.field)]


_SMALL = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def number_words(n: int) -> str:
    """``two`` for small counts, digits from 11 on."""
    return _SMALL[n] if 0 <= n < len(_SMALL) else str(n)


# ----------------------------------------------------------------------------- places


def image_place(row: int, col: int, pick: int = 0) -> str:
    """The image-frame wording of a grid cell: ``the upper left part of the image`` (`pick` chooses
    among equivalent phrasings; 0 is the reference form). The cell's sides come from the position
    grid (`medtrinity_assets.grid`), the phrasings from ``wording.yaml`` positions."""
    p = wording().positions

    def one(forms: tuple[str, ...], **kw: str) -> str:
        return forms[pick % len(forms)].format(**kw)

    g = position_grid()
    named_v, named_h = g.named_sides(row, col)
    v, h = named_v or "", named_h or ""
    if g.near_centre(col):
        return one(p.refined, v=v, h=h) if v else one(p.refined_middle, h=h)
    if v and h:
        return one(p.corner, v=v, h=h)
    if v:
        return one(p.vertical_only, v=v)
    if h:
        return one(p.horizontal_only, h=h)
    return one(p.centre)


def patient_place(position: GridPosition | None, pick: int = 0) -> str:
    """``on the patient's right, posteriorly`` where the frame allowed patient words; else ``""``
    (`pick` chooses among equivalent phrasings of the side; 0 is the reference form)."""
    if position is None:
        return ""
    p = wording().positions
    sides = p.patient_side.get(position.patient_side or "", ())
    words = [
        sides[pick % len(sides)] if sides else "",
        p.patient_level.get(position.patient_level or "", ""),
        p.patient_depth.get(position.patient_depth or "", ""),
    ]
    return ", ".join(w for w in words if w)
