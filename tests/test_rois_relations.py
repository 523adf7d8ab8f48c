"""roi_relations: typed containment, contact, overlap, relative direction, bounds; roi_neighbourhood:
the complete contact sets beside the capped relations."""

from __future__ import annotations

import numpy as np

from medtrinity_assets.records import ROI, DisplayFrame, Relation
from medtrinity_assets.rois import box_from_mask, roi_neighbourhood, roi_relations

H = W = 100
AXIAL = DisplayFrame(plane="axial", lateral="radiological", up="anterior")


def roi(label: str, rows: slice, cols: slice, instance: int | None = None) -> ROI:
    mask = np.zeros((H, W), bool)
    mask[rows, cols] = True
    return ROI(label, "ground_truth", box_from_mask(mask), mask, None, instance)


def abdomen() -> list[ROI]:
    return [
        roi("liver", slice(20, 61), slice(5, 46)),
        roi("lesion", slice(30, 36), slice(15, 21)),
        roi("kidney", slice(61, 81), slice(10, 31)),  # first row right under the liver: borders it
        roi("spleen", slice(20, 51), slice(70, 91)),
    ]


def direction(other: str, d: str) -> Relation:
    return Relation("direction", other, d)


def test_lesion_within_liver_and_directions_in_image_terms():
    rels = roi_relations(abdomen(), W, H, None)
    liver, lesion, kidney, spleen = rels
    assert lesion[0] == Relation("within", "liver")
    assert direction("kidney", "above") in lesion  # nearest non-container reference
    assert direction("spleen", "left") in lesion  # second nearest non-container reference: image side
    assert Relation("borders", "kidney") in liver and Relation("contains", "lesion") in liver
    # the two nearest references (centroids), not the largest: the liver, then the lesion, never the spleen
    assert kidney == [Relation("borders", "liver"), direction("liver", "below"), direction("lesion", "below")]
    assert not any(r.kind in ("within", "borders") for r in spleen)


def test_patient_frame_directions_under_radiological_axial_display():
    lesion = roi_relations(abdomen(), W, H, AXIAL)[1]
    assert direction("kidney", "anterior") in lesion
    assert direction("spleen", "patient_right") in lesion
    assert not any(r.direction in ("left", "right") for r in lesion)


def test_organ_labels_restrict_references():
    rels = roi_relations(abdomen(), W, H, AXIAL, organ_labels={"liver", "kidney", "spleen"})
    liver, lesion = rels[0], rels[1]
    assert lesion[0] == Relation("within", "liver")
    assert not any(r.other == "lesion" for r in liver)  # the lesion is not a reference


def test_overlap_is_not_containment():
    a = roi("cyst", slice(10, 20), slice(10, 20))
    b = roi("duct", slice(15, 25), slice(15, 40))
    rels = roi_relations([a, b], W, H, None)
    assert rels[0][0] == Relation("overlaps", "duct") and rels[1][0] == Relation("overlaps", "cyst")


def test_many_instances_of_one_label_are_counted_not_numbered():
    nuclei = [roi("nucleus", slice(r, r + 4), slice(c, c + 4), instance=k + 1)
              for k, (r, c) in enumerate((r, c) for r in range(0, 48, 4) for c in range(0, 48, 4))]
    cell = roi("cell", slice(0, 60), slice(0, 60))
    first = roi_relations(nuclei + [cell], W, H, None, max_relations=4)
    assert first == roi_relations(nuclei + [cell], W, H, None, max_relations=4)  # deterministic
    assert all(len({(r.kind, r.other) for r in rels}) <= 4 for rels in first)
    assert Relation("borders", "nucleus") in first[0]  # adjacent squares touch: said once
    assert Relation("contains", "nucleus", count=144) in first[-1]
    # no direction to "the nucleus" when there are many of them
    assert not any(r.kind == "direction" and r.other == "nucleus" for rels in first for r in rels)
    assert roi_relations([nuclei[0]], W, H, None) == [[]]


def test_sagittal_and_coronal_directions():
    upper_front = roi("nodule", slice(10, 20), slice(10, 20))
    lower_back = roi("vertebra", slice(60, 80), slice(60, 80))
    sagittal = DisplayFrame(plane="sagittal", up="superior", anterior_side="left")
    rels = roi_relations([upper_front, lower_back], W, H, sagittal)
    assert rels[0] == [direction("vertebra", "superior"), direction("vertebra", "anterior")]
    assert rels[1] == [direction("nodule", "inferior"), direction("nodule", "posterior")]
    coronal = DisplayFrame(plane="coronal", lateral="radiological", up="superior")
    assert roi_relations([upper_front, lower_back], W, H, coronal)[0] == [
        direction("vertebra", "superior"),
        direction("vertebra", "patient_right"),
    ]
    assert roi_relations([upper_front, lower_back], W, H, DisplayFrame())[0] == [
        direction("vertebra", "above"),
        direction("vertebra", "left"),
    ]


def test_contact_sets_are_complete_where_relations_are_capped():
    """Six structures touch a centre square (four sides, one corner diagonally, one overlapping);
    relations keep 4 entries, the contact set names all six, never the far one; contact is mutual
    and not limited to the organ_labels references."""
    rois = [
        roi("centre", slice(40, 60), slice(40, 60)),
        roi("north", slice(30, 40), slice(45, 55)),
        roi("south", slice(60, 70), slice(45, 55)),
        roi("west", slice(45, 55), slice(30, 40)),
        roi("east", slice(45, 55), slice(60, 70)),
        roi("corner", slice(30, 40), slice(30, 40)),  # touches (39, 39) / (40, 40) diagonally only
        roi("patch", slice(55, 65), slice(55, 65)),  # overlaps the centre's corner
        roi("far", slice(0, 5), slice(0, 5)),
    ]
    near = roi_neighbourhood(rois, W, H, None, organ_labels={"centre", "north"})
    assert len(near.relations[0]) <= 4 and len({r.other for r in near.relations[0]}) < 6
    assert near.contacts[0] == ("corner", "east", "north", "patch", "south", "west")
    assert near.contacts[-1] == () and near.contacts[5] == ("centre",) and "centre" in near.contacts[6]
    assert near.relations == roi_relations(rois, W, H, None, organ_labels={"centre", "north"})
