"""Write queries.jsonl, the labelled retrieval evaluation set, from the hand-made tables below.

  python make_queries.py   (in this folder; deterministic, no randomness, no network)

Every query is what one ROI record asks: modality, organs, roi_label, image_labels (findings),
plus `expected` (concept ids a relevant passage must be about: Disease Ontology for findings,
Uberon for structures), `forbidden` (concept ids no passage may be about: the near-miss twin) and
`category`. The concept ids were looked up by hand in data/knowledge/disease_ontology/doid_terms.jsonl.gz
and data/knowledge/anatomy/uberon_terms.jsonl.gz; labels are written the way sources write them
(lower case, side words after the organ as in TotalSegmentator, plurals, abbreviations).
"""

from __future__ import annotations

import json
from pathlib import Path

# finding -> (DOID, [(modality, organ), ...])
FINDINGS = {
    "pneumonia": ("DOID:552", [("X-ray", "chest"), ("CT", "lung")]),
    "tuberculosis": ("DOID:399", [("X-ray", "chest"), ("CT", "lung")]),
    "COVID-19": ("DOID:0080600", [("X-ray", "chest"), ("CT", "lung")]),
    "pneumothorax": ("DOID:1673", [("X-ray", "chest"), ("CT", "thorax")]),
    "pulmonary embolism": ("DOID:9477", [("CT", "lung")]),
    "lung cancer": ("DOID:1324", [("CT", "lung"), ("X-ray", "chest")]),
    "bronchiectasis": ("DOID:9563", [("CT", "lung")]),
    "pulmonary fibrosis": ("DOID:3770", [("CT", "lung")]),
    "sarcoidosis": ("DOID:11335", [("CT", "thorax")]),
    "cystic fibrosis": ("DOID:1485", [("CT", "lung")]),
    "lung abscess": ("DOID:0060317", [("CT", "lung")]),
    "asthma": ("DOID:2841", [("X-ray", "chest")]),
    "pericardial effusion": ("DOID:118", [("Ultrasound", "heart"), ("CT", "thorax")]),
    "myocardial infarction": ("DOID:5844", [("MRI", "heart")]),
    "coronary artery disease": ("DOID:3393", [("CT", "heart")]),
    "aortic aneurysm": ("DOID:3627", [("CT", "aorta")]),
    "aortic dissection": ("DOID:0080685", [("CT", "aorta")]),
    "hepatocellular carcinoma": ("DOID:684", [("CT", "liver"), ("MRI", "liver")]),
    "hemangioma": ("DOID:255", [("MRI", "liver"), ("Ultrasound", "liver")]),
    "hepatitis": ("DOID:2237", [("Ultrasound", "liver")]),
    "cholangiocarcinoma": ("DOID:4947", [("MRI", "liver")]),
    "cholecystitis": ("DOID:1949", [("Ultrasound", "gallbladder"), ("CT", "abdomen")]),
    "gallbladder cancer": ("DOID:3121", [("CT", "gallbladder")]),
    "pancreatitis": ("DOID:4989", [("CT", "pancreas")]),
    "pancreatic cancer": ("DOID:1793", [("CT", "pancreas"), ("MRI", "pancreas")]),
    "renal cell carcinoma": ("DOID:4450", [("CT", "kidney"), ("MRI", "kidney")]),
    "polycystic kidney disease": ("DOID:0080322", [("Ultrasound", "kidney"), ("CT", "kidney")]),
    "nephrolithiasis": ("DOID:585", [("CT", "kidney")]),
    "hydronephrosis": ("DOID:11111", [("Ultrasound", "kidney")]),
    "appendicitis": ("DOID:8337", [("CT", "abdomen"), ("Ultrasound", "abdomen")]),
    "diverticulitis": ("DOID:7475", [("CT", "colon")]),
    "colon cancer": ("DOID:219", [("CT", "colon")]),
    "Crohn's disease": ("DOID:8778", [("MRI", "small intestine")]),
    "ulcerative colitis": ("DOID:8577", [("CT", "colon")]),
    "stomach cancer": ("DOID:10534", [("CT", "stomach")]),
    "esophageal cancer": ("DOID:5041", [("CT", "esophagus")]),
    "pheochromocytoma": ("DOID:0050771", [("CT", "adrenal gland")]),
    "adrenal adenoma": ("DOID:656", [("CT", "adrenal gland")]),
    "neuroblastoma": ("DOID:769", [("MRI", "abdomen")]),
    "glioblastoma": ("DOID:3068", [("MRI", "brain")]),
    "meningioma": ("DOID:3565", [("MRI", "brain"), ("CT", "head")]),
    "medulloblastoma": ("DOID:0050902", [("MRI", "brain")]),
    "multiple sclerosis": ("DOID:2377", [("MRI", "brain")]),
    "hydrocephalus": ("DOID:10908", [("CT", "head"), ("MRI", "brain")]),
    "ischemic stroke": ("DOID:0051062", [("CT", "head")]),
    "Alzheimer's disease": ("DOID:10652", [("MRI", "brain")]),
    "pituitary adenoma": ("DOID:3829", [("MRI", "brain")]),
    "osteosarcoma": ("DOID:3347", [("X-ray", "femur"), ("MRI", "knee")]),
    "Ewing sarcoma": ("DOID:3369", [("MRI", "pelvis")]),
    "chondrosarcoma": ("DOID:3371", [("CT", "pelvis")]),
    "osteoarthritis": ("DOID:8398", [("X-ray", "knee"), ("X-ray", "hip")]),
    "rheumatoid arthritis": ("DOID:7148", [("X-ray", "hand")]),
    "osteoporosis": ("DOID:11476", [("CT", "spine")]),
    "osteomyelitis": ("DOID:1019", [("MRI", "foot")]),
    "scoliosis": ("DOID:0060249", [("X-ray", "spine")]),
    "spondylolisthesis": ("DOID:6682", [("X-ray", "spine")]),
    "gout": ("DOID:13189", [("X-ray", "foot")]),
    "ossifying fibroma": ("DOID:180", [("CT", "mandible")]),
    "lipoma": ("DOID:3315", [("MRI", "thigh")]),
    "melanoma": ("DOID:1909", [("Dermoscopy", "skin")]),
    "basal cell carcinoma": ("DOID:2513", [("Dermoscopy", "skin")]),
    "squamous cell carcinoma": ("DOID:1749", [("Dermoscopy", "skin")]),
    "keratosis": ("DOID:161", [("Dermoscopy", "skin")]),
    "glaucoma": ("DOID:1686", [("Fundus photography", "retina")]),
    "age related macular degeneration": ("DOID:10871", [("Fundus photography", "retina")]),
    "retinoblastoma": ("DOID:768", [("Ultrasound", "eye")]),
    "uveal melanoma": ("DOID:6039", [("Ultrasound", "eye")]),
    "cataract": ("DOID:83", [("Photograph", "eye")]),
    "breast cancer": ("DOID:1612", [("Mammography", "breast"), ("Ultrasound", "breast")]),
    "prostate cancer": ("DOID:10283", [("MRI", "prostate")]),
    "ovarian cancer": ("DOID:2394", [("Ultrasound", "ovary")]),
    "ovarian cyst": ("DOID:5119", [("Ultrasound", "ovary")]),
    "endometriosis": ("DOID:289", [("MRI", "pelvis")]),
    "uterine fibroid": ("DOID:13223", [("Ultrasound", "uterus")]),
    "cervical cancer": ("DOID:4362", [("MRI", "pelvis")]),
    "thyroid cancer": ("DOID:1781", [("Ultrasound", "thyroid")]),
    "goiter": ("DOID:12176", [("Ultrasound", "thyroid")]),
    "lymphoma": ("DOID:0060058", [("CT", "lymph node"), ("PET", "whole body")]),
    "multiple myeloma": ("DOID:9538", [("X-ray", "skull")]),
    "leukemia": ("DOID:1240", [("Microscopy", "blood")]),
    "malaria": ("DOID:12365", [("Microscopy", "blood")]),
    "sickle cell anemia": ("DOID:10923", [("Microscopy", "blood")]),
    "carpal tunnel syndrome": ("DOID:12169", [("Ultrasound", "wrist")]),
    "varicose veins": ("DOID:799", [("Ultrasound", "leg")]),
    "sinusitis": ("DOID:0050127", [("CT", "paranasal sinus")]),
    "thymoma": ("DOID:3275", [("CT", "mediastinum")]),
}

# abbreviation -> (DOID, modality, organ)
ABBREVIATIONS = {
    "HCC": ("DOID:684", "CT", "liver"),
    "COPD": ("DOID:3083", "CT", "lung"),
    "TB": ("DOID:399", "X-ray", "chest"),
    "AAA": ("DOID:7693", "CT", "abdomen"),
    "RCC": ("DOID:4450", "CT", "kidney"),
    "AMD": ("DOID:10871", "Fundus photography", "retina"),
    "BCC": ("DOID:2513", "Dermoscopy", "skin"),
    "IPF": ("DOID:0050156", "CT", "lung"),
    "CAD": ("DOID:3393", "CT", "heart"),
    "PKD": ("DOID:0080322", "Ultrasound", "kidney"),
    "UTI": ("DOID:0080784", "Ultrasound", "bladder"),
    "NHL": ("DOID:0060060", "PET", "whole body"),
    "COVID-19 pneumonia": ("DOID:0080600", "X-ray", "chest"),
    "covid": ("DOID:0080600", "CT", "lung"),
    "kidney stone": ("DOID:585", "CT", "kidney"),
}

# near-miss pairs: (label, expected DOID or None, forbidden DOID, modality, organ)
NEAR_MISSES = [
    ("non-ossifying fibroma", None, "DOID:180", "X-ray", "tibia"),
    ("nonossifying fibroma", None, "DOID:180", "X-ray", "femur"),
    ("ossifying fibroma", "DOID:180", "DOID:8305", "CT", "mandible"),
    ("nonossifying fibromyxoid tumor", "DOID:8305", "DOID:2685", "MRI", "thigh"),
    ("ossifying fibromyxoid tumor", "DOID:2685", "DOID:8305", "MRI", "thigh"),
    ("uveal melanoma", "DOID:6039", "DOID:1909", "MRI", "eye"),
    ("melanoma", "DOID:1909", "DOID:6039", "Dermoscopy", "skin"),
    ("lung adenocarcinoma", "DOID:3910", "DOID:1324", "CT", "lung"),
    ("abdominal aortic aneurysm", "DOID:7693", "DOID:3627", "CT", "abdomen"),
    ("idiopathic pulmonary fibrosis", "DOID:0050156", "DOID:3770", "CT", "lung"),
    ("stroke", "DOID:0051061", "DOID:0051062", "CT", "head"),
    ("Hodgkin's lymphoma", "DOID:8567", "DOID:0060060", "PET", "whole body"),
    ("non-Hodgkin lymphoma", "DOID:0060060", "DOID:8567", "PET", "whole body"),
    ("type 2 diabetes mellitus", "DOID:9352", "DOID:9351", "Fundus photography", "retina"),
    ("fibroma", "DOID:0050871", "DOID:180", "MRI", "skin"),
    ("colorectal cancer", "DOID:9256", "DOID:219", "CT", "colon"),
]

# normal anatomy: (ROI label as sources write it, Uberon id, modality, organs)
ANATOMY = [
    ("liver", "UBERON:0002107", "CT", "abdomen"),
    ("spleen", "UBERON:0002106", "CT", "abdomen"),
    ("kidney left", "UBERON:0004538", "CT", "abdomen"),
    ("kidney right", "UBERON:0004539", "MRI", "abdomen"),
    ("left kidney", "UBERON:0004538", "Ultrasound", "abdomen"),
    ("kidney", "UBERON:0002113", "Ultrasound", "abdomen"),
    ("gallbladder", "UBERON:0002110", "CT", "abdomen"),
    ("stomach", "UBERON:0000945", "CT", "abdomen"),
    ("pancreas", "UBERON:0001264", "MRI", "abdomen"),
    ("duodenum", "UBERON:0002114", "CT", "abdomen"),
    ("small bowel", "UBERON:0002108", "CT", "abdomen"),
    ("colon", "UBERON:0001155", "CT", "pelvis"),
    ("aorta", "UBERON:0000947", "CT", "thorax"),
    ("inferior vena cava", "UBERON:0001072", "CT", "abdomen"),
    ("IVC", "UBERON:0001072", "MRI", "abdomen"),
    ("portal vein and splenic vein", "UBERON:0001639", "CT", "abdomen"),
    ("adrenal gland left", "UBERON:0001234", "CT", "abdomen"),
    ("adrenal gland right", "UBERON:0001233", "MRI", "abdomen"),
    ("lung upper lobe left", "UBERON:0002048", "CT", "thorax"),
    ("lung lower lobe right", "UBERON:0002048", "CT", "thorax"),
    ("lungs", "UBERON:0002048", "X-ray", "chest"),
    ("lung right", "UBERON:0002167", "MRI", "thorax"),
    ("left lung", "UBERON:0002168", "X-ray", "chest"),
    ("heart myocardium", "UBERON:0002349", "CT", "thorax"),
    ("heart atrium left", "UBERON:0002081", "CT", "thorax"),
    ("heart ventricle right", "UBERON:0002082", "MRI", "thorax"),
    ("heart", "UBERON:0000948", "X-ray", "chest"),
    ("spinal cord", "UBERON:0002240", "MRI", "spine"),
    ("vertebrae T9", "UBERON:0002412", "CT", "thorax"),
    ("vertebrae L1", "UBERON:0002412", "CT", "abdomen"),
    ("intervertebral discs", "UBERON:0001066", "MRI", "spine"),
    ("rib left 9", "UBERON:0002228", "CT", "thorax"),
    ("costal cartilages", "UBERON:0002236", "CT", "thorax"),
    ("autochthon left", "UBERON:0002462", "CT", "thorax"),
    ("iliopsoas right", "UBERON:0001999", "MRI", "pelvis"),
    ("gluteus maximus left", "UBERON:0001370", "CT", "pelvis"),
    ("femur right", "UBERON:0000981", "CT", "pelvis"),
    ("hip left", "UBERON:0001272", "CT", "pelvis"),  # the hip bone (concepts.yaml alias), not the hip region
    ("brain", "UBERON:0000955", "MRI", "brain"),
    ("retina", "UBERON:0000966", "Fundus photography", "retina"),
    ("blood vessel", "UBERON:0001981", "Ultrasound", "neck"),
    ("nerve", "UBERON:0001021", "Ultrasound", "arm"),
    ("brachial plexus nerve", "UBERON:0001021", "Ultrasound", "shoulder"),
    ("tibia", "UBERON:0000979", "X-ray", "leg"),
    ("vertebral column", "UBERON:0001130", "X-ray", "spine"),
]
# normal anatomy on images explicitly labelled normal
NORMAL_LABELS = ["no finding", "normal"]

# anatomy ROI on an image with a recorded finding: ROI gets its anatomy, the image its finding, nothing else
ANATOMY_WITH_FINDING = [
    ("lungs", "UBERON:0002048", "tuberculosis", "DOID:399", "X-ray", "chest"),
    ("lungs", "UBERON:0002048", "COVID-19 pneumonia", "DOID:0080600", "X-ray", "chest"),
    ("liver", "UBERON:0002107", "hepatocellular carcinoma", "DOID:684", "CT", "liver"),
    ("kidney left", "UBERON:0004538", "renal cell carcinoma", "DOID:4450", "CT", "kidney"),
    ("pancreas", "UBERON:0001264", "pancreatitis", "DOID:4989", "CT", "abdomen"),
    ("brain", "UBERON:0000955", "glioblastoma", "DOID:3068", "MRI", "brain"),
    ("retina", "UBERON:0000966", "glaucoma", "DOID:1686", "Fundus photography", "retina"),
    ("tibia", "UBERON:0000979", "osteosarcoma", "DOID:3347", "X-ray", "leg"),
]


def rows():
    n = 0

    def row(category, modality, organs, roi_label, image_labels, expected, forbidden=()):
        nonlocal n
        n += 1
        return {
            "id": f"q{n:03d}",
            "category": category,
            "modality": modality,
            "organs": list(organs),
            "roi_label": roi_label,
            "image_labels": list(image_labels),
            "expected": list(expected),
            "forbidden": list(forbidden),
        }

    for label, (doid, places) in FINDINGS.items():
        for i, (modality, organ) in enumerate(places):
            # first place: the finding is the image's label; second: the ROI itself is labelled with it
            yield row("finding", modality, [organ], None if i == 0 else label, [label] if i == 0 else [], [doid])
    for label, (doid, modality, organ) in ABBREVIATIONS.items():
        yield row("abbreviation", modality, [organ], None, [label], [doid])
    for label, doid, forbidden, modality, organ in NEAR_MISSES:
        yield row("near_miss", modality, [organ], None, [label], [doid] if doid else [], [forbidden])
    for i, (label, uberon, modality, organ) in enumerate(ANATOMY):
        labels = [NORMAL_LABELS[i % 2]] if i % 3 == 0 else []
        yield row("anatomy", modality, [organ], label, labels, [uberon])
    for label, uberon, finding, doid, modality, organ in ANATOMY_WITH_FINDING:
        yield row("anatomy_with_finding", modality, [organ], label, [finding], [uberon, doid])


if __name__ == "__main__":
    out = Path(__file__).with_name("queries.jsonl")
    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) for r in rows()]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} queries -> {out}")
