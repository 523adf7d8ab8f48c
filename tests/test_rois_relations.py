"""roi_relations: containment, contact, overlap, relative position, bounds."""

from __future__ import annotations

import numpy as np

from medtrinity_assets.records import ROI
from medtrinity_assets.rois import box_from_mask, roi_relations

H = W = 100
AXIAL = "radiological: patient left on image right (axial)"


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


def test_lesion_within_liver_and_positions_in_image_terms():
    rels = roi_relations(abdomen(), W, H, "")
    liver, lesion, kidney, spleen = rels
    assert lesion[0] == "within the liver"
    assert "above the kidney" in lesion  # nearest non-container reference
    assert "left of the spleen (image side)" in lesion  # largest non-container reference
    assert "borders the kidney" in liver and "contains the lesion" in liver
    assert kidney == ["borders the liver", "below the liver"]  # liver is both nearest and largest
    assert not any("within" in r or "borders" in r for r in spleen)
    assert all(len(r) <= 4 for r in rels)


def test_anatomical_wording_under_radiological_axial_convention():
    lesion = roi_relations(abdomen(), W, H, AXIAL)[1]
    assert "anterior to the kidney" in lesion
    assert "to the patient's right of the spleen" in lesion
    assert not any("image side" in r for r in lesion)


def test_organ_labels_restrict_references():
    rels = roi_relations(abdomen(), W, H, AXIAL, organ_labels={"liver", "kidney", "spleen"})
    liver, lesion = rels[0], rels[1]
    assert lesion[0] == "within the liver"
    assert not any("lesion" in r for r in liver)  # the lesion is not a reference


def test_overlap_is_not_containment():
    a = roi("cyst", slice(10, 20), slice(10, 20))
    b = roi("duct", slice(15, 25), slice(15, 40))
    rels = roi_relations([a, b], W, H, "")
    assert rels[0][0] == "overlaps the duct" and rels[1][0] == "overlaps the cyst"


def test_bounded_deterministic_and_named_instances():
    nuclei = [roi("nucleus", slice(r, r + 4), slice(c, c + 4), instance=k + 1)
              for k, (r, c) in enumerate((r, c) for r in range(0, 48, 4) for c in range(0, 48, 4))]
    first = roi_relations(nuclei, W, H, "", max_relations=4)
    assert first == roi_relations(nuclei, W, H, "", max_relations=4)
    assert all(1 <= len(r) <= 4 for r in first)
    assert any("borders the nucleus #" in s for r in first for s in r)  # adjacent squares touch
    assert roi_relations([nuclei[0]], W, H, "") == [[]]


def test_sagittal_and_coronal_wording():
    upper_front = roi("nodule", slice(10, 20), slice(10, 20))
    lower_back = roi("vertebra", slice(60, 80), slice(60, 80))
    sagittal = roi_relations([upper_front, lower_back], W, H, "sagittal: anterior on image left, superior up")
    assert sagittal[0] == ["superior and anterior to the vertebra"]
    assert sagittal[1] == ["inferior and posterior to the nodule"]
    coronal_text = "radiological coronal: patient left on image right, superior up"
    coronal = roi_relations([upper_front, lower_back], W, H, coronal_text)
    assert coronal[0] == ["superior to and to the patient's right of the vertebra"]
    plain = roi_relations([upper_front, lower_back], W, H, "as acquired (2D source)")
    assert plain[0] == ["above and left of the vertebra (image side)"]
