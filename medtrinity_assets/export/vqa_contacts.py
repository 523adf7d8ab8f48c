"""Contact questions about an outlined ROI, from its record's contact set.

`contacts` (record schema 10) lists every structure the ROI's mask touches or overlaps, so "Does
the outlined right kidney touch the liver?" is answered "Yes" for a structure in the set. No "No"
question is asked: masks of structures that touch in the body are often drawn with a pixel or two
between them, so a gap between masks does not show that two structures are apart. Records
without `contacts` get no contact question; a same-label neighbour is not asked about.
"""

from __future__ import annotations

from collections.abc import Callable

from medtrinity_assets.captions.vocab import label_text

CATEGORY = "relation"


def contact_questions(r: dict, label: str, pick: Callable[[list[str], str], str | None]) -> list[tuple[str, str]]:
    """(question, "Yes") about one structure the outlined `label` touches; `pick` chooses it per
    record, stably."""
    own = r.get("roi_label")
    touching = sorted({c for c in r.get("contacts") or [] if c != own}) if own else []
    other = pick(touching, r["sample_id"])
    return [(f"Does the outlined {label} touch the {label_text(other)}?", "Yes")] if other else []
