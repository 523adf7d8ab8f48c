"""Name templates (``{stem}``, ``{<group>}``), name capture and label normalisation."""

from __future__ import annotations

import re
from functools import lru_cache

from wcmatch import glob as wglob

from medtrinity_assets.catalog.models import LabelRules, NameCapture

TEMPLATE_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
SIDE_WORDS = ("left", "right", "bilateral")
#: the label rules of a source that declares none: label_regex captures read '_' as a space
REGEX_LABEL_DEFAULT = LabelRules()


def templates_in(text: str) -> set[str]:
    return set(TEMPLATE_RE.findall(text))


def fill_glob(pattern: str, values: dict[str, str]) -> str:
    """`pattern` with every ``{name}`` replaced by the glob-escaped value."""
    return TEMPLATE_RE.sub(lambda m: wglob.escape(values[m.group(1)]), pattern)


def fill_regex(regex: str, values: dict[str, str]) -> str:
    """`regex` with every ``{name}`` replaced by the regex-escaped value."""
    return TEMPLATE_RE.sub(lambda m: re.escape(values[m.group(1)]), regex)


def as_wildcards(pattern: str) -> str:
    """`pattern` with every template replaced by ``*`` (all files a mask spec can ever match)."""
    return TEMPLATE_RE.sub("*", pattern)


@lru_cache(maxsize=4096)
def compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


def check_regex(regex: str, known: set[str], needs: tuple[str, ...] = ()) -> str | None:
    """Why `regex` (templates allowed from `known`) cannot be used, or None."""
    unknown = templates_in(regex) - known
    if unknown:
        return f"unknown template(s) {sorted(unknown)} (known: {sorted(known)})"
    try:
        pattern = re.compile(TEMPLATE_RE.sub("x", regex))
    except re.error as exc:
        return f"not a valid regular expression: {exc.msg} at position {exc.pos}"
    missing = [g for g in needs if g not in pattern.groupindex]
    if missing:
        return f"needs the named group(s) {', '.join(f'(?P<{g}>...)' for g in missing)}"
    return None


def capture_groups(capture: NameCapture | None) -> set[str]:
    return set(compiled(capture.regex).groupindex) if capture else set()


def _words(text: str) -> list[str]:
    return text.split()


def normalise_label(label: str, rules: LabelRules) -> str:
    """`label` written by `rules` (see `LabelRules`)."""
    text = label
    for sep in rules.separators:
        text = text.replace(sep, " ")
    if rules.case == "lower":
        text = text.lower()
    words = [rules.words.get(w, rules.words.get(w.lower(), w)) for w in _words(text)]
    words = _words(" ".join(words))
    if rules.side != "keep":
        sides = [w for w in words if w.lower() in SIDE_WORDS]
        rest = [w for w in words if w.lower() not in SIDE_WORDS]
        words = sides + rest if rules.side == "first" else rest + sides
    text = " ".join(words)
    return rules.rename.get(text, text)
