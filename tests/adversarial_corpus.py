"""Loader of tests/adversarial_captions.yaml: records as typed CaptionFacts, captions as cases."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from medtrinity_assets.captions import coarse_caption, compose_caption, examples
from medtrinity_assets.records import CaptionFacts, DisplayFrame, GridPosition, Intensity, Measurements, Relation

CORPUS = Path(__file__).with_name("adversarial_captions.yaml")
PASSAGES = {"HCC_DO": examples.HCC_DO, "LIVER_CANCER_MQ": examples.LIVER_CANCER_MQ, "TB_MQ": examples.TB_MQ, "GLIOMA_DO": examples.GLIOMA_DO}


@dataclass(frozen=True)
class Case:
    id: str
    record: str
    expect: str  # a problem code, or "none"
    text: str
    sections: dict
    known_miss: str = ""


def build_facts(name: str, spec: dict) -> CaptionFacts:
    frame = DisplayFrame(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["frame"].items()}) if spec.get("frame") else None
    roi = spec.get("roi_label")
    others = list(spec.get("other_rois", []))
    return CaptionFacts(
        modality=spec["modality"],
        organs=list(spec.get("organs", [])),
        coarse_caption=coarse_caption(spec["modality"], list(spec.get("organs", [])), list(spec.get("image_labels", [])), [x for x in [roi, *others] if x]),
        roi_label=roi,
        roi_position=spec.get("roi_position"),
        roi_area_frac=spec.get("roi_area_frac"),
        image_labels=list(spec.get("image_labels", [])),
        other_rois=others,
        knowledge=[PASSAGES[k] for k in spec.get("knowledge", [])],
        orientation=spec.get("orientation", ""),
        extra={"roi_id": f"corpus/{name}"},
        frame=frame,
        position=GridPosition(**spec["position"]) if spec.get("position") else None,
        relations=[Relation(**r) for r in spec.get("relations", [])],
        contacts=spec.get("contacts"),
        measurements=Measurements(**spec["measurements"]) if spec.get("measurements") else None,
        spacing_mm=tuple(spec["spacing_mm"]) if spec.get("spacing_mm") else None,
        other_intensities=[Intensity(**i) for i in spec.get("other_intensities", [])],
    )


@lru_cache(maxsize=1)
def load_corpus() -> tuple[dict[str, CaptionFacts], tuple[Case, ...]]:
    raw = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    records = {name: build_facts(name, spec) for name, spec in raw["records"].items()}
    cases = []
    for c in raw["captions"]:
        facts = records[c["record"]]
        composed_text, composed_sections = compose_caption(facts, seed=c["id"])
        text = composed_text if c["text"] == "composer" else c["text"]
        sections = {**composed_sections, **(c.get("sections") or {})}
        cases.append(Case(c["id"], c["record"], c["expect"], text, sections, c.get("known_miss", "")))
    return records, tuple(cases)
