"""Realistic `CaptionFacts` for demos, benchmarks and tests (one per common modality).

Passage texts are short excerpts of the project's knowledge corpora (Disease Ontology, CC0;
MedQuAD, CC BY 4.0) in the form the knowledge stage stores them, with the concept ids retrieval
records. Measurements are typical values of the bundled demo sources (see data/appearance.yaml).
"""

from __future__ import annotations

from medtrinity_assets.records import CaptionFacts, ConceptRef, DisplayFrame, GridPosition, Measurements, Passage, Relation

from .coarse import coarse_caption


def _passage(chunk_id: str, title: str, score: float, concept_id: str, text: str) -> Passage:
    """A stored knowledge chunk about one concept; its corpus is the chunk id's prefix."""
    return Passage(chunk_id=chunk_id, corpus=chunk_id.split(":", 1)[0], title=title, text=text, score=score, concept_ids=(concept_id,))


HCC_DO = _passage(
    "disease_ontology:DOID:684:0", "hepatocellular carcinoma", 0.82, "DOID:684",
    "hepatocellular carcinoma: A liver carcinoma that has material basis in undifferentiated hepatocytes and located in the liver. "
    "Also called: Hepatoma. Is a: liver carcinoma. Anatomy: liver. Tumours are often heterogeneous, with necrosis and haemorrhage.",
)
LIVER_CANCER_MQ = _passage(
    "medquad:CancerGov-0000010_1-1:0", "Adult Primary Liver Cancer", 0.71, "DOID:684",
    "What is (are) Adult Primary Liver Cancer? Key Points - Adult primary liver cancer is a disease in which malignant (cancer) cells form in the tissues of the liver.",
)
TB_MQ = _passage(
    "medquad:CDC-0000003-1:0", "Tuberculosis", 0.77, "DOID:399",
    "What is (are) Tuberculosis? Tuberculosis (TB) is a disease caused by bacteria called Mycobacterium tuberculosis. The bacteria usually "
    "attack the lungs, but TB bacteria can attack any part of the body such as the kidney, spine, and brain.",
)
GLIOMA_DO = _passage("disease_ontology:DOID:3070:0", "malignant glioma", 0.31, "DOID:3070", "malignant glioma: A cell type cancer that has material basis in glial cells.")
HCC = ConceptRef("DOID:684", "finding", "hepatocellular carcinoma")
TB = ConceptRef("DOID:399", "finding", "tuberculosis")


def ct_liver() -> CaptionFacts:
    """Axial abdominal CT, liver ROI in the upper left of the image, recorded HCC."""
    return CaptionFacts(
        modality="CT",
        organs=["abdomen"],
        coarse_caption=coarse_caption("CT", ["abdomen"], ["hepatocellular carcinoma"], ["liver", "spleen", "aorta"]),
        roi_label="liver",
        roi_position="upper left",
        roi_area_frac=0.183,
        roi_relations=["borders the spleen", "anterior to and to the patient's right of the aorta"],
        image_labels=["hepatocellular carcinoma"],
        other_rois=["spleen", "aorta", "inferior_vena_cava"],
        knowledge=[HCC_DO, LIVER_CANCER_MQ],
        orientation="axial, radiological (patient left on image right)",
        extra={"anatomical_position": "in the patient's right anterior region"},
        frame=DisplayFrame(plane="axial", lateral="radiological", up="anterior", spacing_rc=(0.8, 0.8)),
        position=GridPosition(row=0, col=0, patient_side="right", patient_level="anterior"),
        relations=[
            Relation("borders", "spleen"),
            Relation("direction", "aorta", "anterior"),
            Relation("direction", "aorta", "patient_right"),
        ],
        measurements=Measurements(
            intensity_unit="HU", mean=58.2, ring_mean=21.5, std=14.1, ring_std=40.3, contrast=1.21,
            entropy=2.4, glcm_contrast=1.3, glcm_homogeneity=0.55, area_px=12000, area_mm2=7680.0,
            equivalent_diameter_px=123.6, equivalent_diameter_mm=98.9, circularity=0.55, elongation=0.62,
            solidity=0.86, margin_sharpness=1.9, n_components=1, label_count=1,
        ),
        finding_concepts=[HCC],
        spacing_mm=(0.8, 0.8),
    )


def xray_lungs() -> CaptionFacts:
    """Frontal chest radiograph, both lungs as the ROI, recorded tuberculosis."""
    return CaptionFacts(
        modality="X-ray",
        organs=["chest"],
        coarse_caption=coarse_caption("X-ray", ["chest"], ["tuberculosis"], ["lungs"]),
        roi_label="lungs",
        roi_position="middle center",
        roi_area_frac=0.412,
        image_labels=["tuberculosis"],
        knowledge=[TB_MQ],
        orientation="frontal projection",
        frame=DisplayFrame(plane="projection", up="superior"),
        position=GridPosition(row=2, col=2, patient_level="central"),
        measurements=Measurements(
            intensity_unit="relative", mean=0.58, ring_mean=0.87, std=0.21, ring_std=0.12, contrast=-1.7,
            entropy=4.4, glcm_homogeneity=0.8, area_px=180000, circularity=0.5, elongation=0.52, solidity=0.88,
            margin_sharpness=1.1, n_components=2, label_count=1,
        ),
        finding_concepts=[TB],
    )


def microscopy_nucleus() -> CaptionFacts:
    """Fluorescence microscopy, one nucleus among many."""
    return CaptionFacts(
        modality="microscopy",
        organs=["cell nuclei"],
        coarse_caption=coarse_caption("microscopy", ["cell nuclei"], [], ["nucleus"]),
        roi_label="nucleus",
        roi_position="lower-middle right-center",
        roi_area_frac=0.0021,
        other_rois=["nucleus"],
        relations=[Relation("borders", "nucleus"), Relation("direction", "nucleus", "above"), Relation("direction", "nucleus", "left")],
        position=GridPosition(row=3, col=3),
        measurements=Measurements(
            intensity_unit="relative", mean=0.41, ring_mean=0.17, std=0.07, ring_std=0.05, contrast=3.1,
            entropy=3.1, glcm_homogeneity=0.48, area_px=440, circularity=0.84, elongation=0.9, solidity=0.96,
            margin_sharpness=1.7, n_components=1, label_count=125,
        ),
    )


def mri_brain_whole() -> CaptionFacts:
    """Brain MRI without an ROI (whole-image description); an off-topic passage was retrieved."""
    return CaptionFacts(
        modality="MRI",
        organs=["brain"],
        coarse_caption=coarse_caption("MRI", ["brain"], [], []),
        roi_label=None,
        roi_position=None,
        roi_area_frac=None,
        knowledge=[GLIOMA_DO],
        orientation="axial, radiological (patient left on image right)",
    )


EXAMPLES = {
    "ct_liver": ct_liver,
    "xray_lungs": xray_lungs,
    "microscopy_nucleus": microscopy_nucleus,
    "mri_brain_whole": mri_brain_whole,
}
