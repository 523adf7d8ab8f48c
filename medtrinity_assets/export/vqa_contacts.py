"""Contact questions about an outlined ROI, from its record's contact set.

`contacts` (record schema 10) lists every structure the ROI's mask touches or overlaps, so "Does
the outlined right kidney touch the liver?" is answered "Yes" for a structure in the set. No "No"
question is asked: masks of structures that touch in the body are often drawn with a pixel or two
between them, so a gap between masks does not show that two structures are apart. Records
without `contacts` get no contact question; a same-label neighbour is not asked about.
"""

from __future__ import annotations

from collections.abc import Callable

from medtrinity_assets.captions.labels import Name, structure_name

CATEGORY = "relation"


def contact_questions(r: dict, name: Name, pick: Callable[[list[str], str], str | None]) -> list[tuple[str, str]]:
    """(question, "Yes") about one structure the outlined ROI (`name`) touches; `pick` chooses it
    per record, stably."""
    own = r.get("roi_label")
    touching = sorted({c for c in r.get("contacts") or [] if c != own}) if own else []
    other = pick(touching, r["sample_id"])
    does = "Do" if name.plural else "Does"
    return [(f"{does} the outlined {name.text} touch the {structure_name(other).text}?", "Yes")] if other else []
