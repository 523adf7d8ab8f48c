"""ExpertModels: a thin, routed, batched client of expert segmentation models -> label maps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from medtrinity_assets.records import LabelMap, Slice2D
from medtrinity_resources.yaml_config import read_yaml_mapping, validate_config

from .cache import PREDICTORS, load_expert
from .config import ExpertConfigError, ExpertSpec, RouteRule, resolve_device

GPU_TAG = "medtrinity/gpu"


def _matches(rule_value: str | None, values: Sequence[str]) -> bool:
    if rule_value is None:
        return True
    wanted = rule_value.strip().lower()
    return any(wanted == v.strip().lower() for v in values)


class ExpertModels(dg.ConfigurableResource):
    """Expert models by name, a routing table, batched prediction into label maps.

    ROI extraction from the label maps is domain work (`medtrinity_assets.rois.experts`).
    """

    experts: list[ExpertSpec] = []
    routing: list[RouteRule] = []

    def spec(self, name: str) -> ExpertSpec:
        """The spec called `name` (ExpertConfigError when unknown or misconfigured)."""
        for spec in self.experts:
            if spec.name == name:
                if spec.spatial_dims not in (2, 3):
                    raise ExpertConfigError(f"expert {name!r}: spatial_dims must be 2 or 3")
                if spec.kind == "yolo" and spec.spatial_dims != 2:
                    raise ExpertConfigError(f"expert {name!r}: YOLO experts are 2-D")
                return spec
        raise ExpertConfigError(f"unknown expert {name!r}; configured: {[s.name for s in self.experts]}")

    def route(self, modality: str, organs: Sequence[str] = (), labels: Sequence[str] = ()) -> str | None:
        """Name of the expert of the first matching rule, or None."""
        for rule in self.routing:
            modality_ok = rule.modality.strip() == "*" or _matches(rule.modality, [modality])
            if modality_ok and _matches(rule.organ, organs) and _matches(rule.label, labels):
                self.spec(rule.expert)
                return rule.expert
        return None

    def origin(self, name: str) -> str:
        """``model:<name>@<version>`` (loads the model to learn a hashed version)."""
        return f"model:{name}@{load_expert(self.spec(name)).version}"

    def predict(self, expert_name: str, slices: list[Slice2D]) -> list[LabelMap]:
        """One label map per slice from one expert, run in batches; models load once per process."""
        if not slices:
            return []
        spec = self.spec(expert_name)
        loaded = load_expert(spec)
        return PREDICTORS[spec.kind](spec, loaded, slices, f"model:{spec.name}@{loaded.version}")

    @property
    def uses_gpu(self) -> bool:
        """Whether any configured expert would run on cuda."""
        try:
            return any(resolve_device(s.device) == "cuda" for s in self.experts)
        except ExpertConfigError:
            return True  # cuda requested explicitly

    def gpu_tags(self) -> dict[str, str]:
        """``{"medtrinity/gpu": "true"}`` when an expert runs on cuda, else {}."""
        return {GPU_TAG: "true"} if self.uses_gpu else {}


def load_expert_config(path: str | Path | None, default_device: str | None = None):
    """ExpertModels from a YAML file ``{experts: [...], routing: [...]}``; no path -> no experts.

    Relative expert paths are resolved against the YAML file's directory; `default_device`
    (e.g. ``MEDTRINITY_DEVICE``) applies to experts that do not set ``device``. Example::

        experts:
          - {name: spleen_ct, kind: monai_bundle, path: bundles/spleen_ct_segmentation,
             labels: [background, spleen], spatial_dims: 3}
          - {name: cxr_yolo, kind: yolo, path: weights/cxr_findings.pt, imgsz: 640}
        routing:
          - {modality: CT, organ: spleen, expert: spleen_ct}
          - {modality: X-ray, expert: cxr_yolo}
    """
    if not path:
        return ExpertModels()
    config_path = Path(path)
    raw = read_yaml_mapping(config_path, "expert config", ExpertConfigError)
    if set(raw) - {"experts", "routing"}:
        raise ExpertConfigError(f"expert config {config_path} must be a mapping with keys experts, routing")
    experts = []
    for entry in raw.get("experts") or []:
        entry = dict(entry)
        if "path" in entry and not Path(str(entry["path"])).is_absolute():
            entry["path"] = str((config_path.parent / str(entry["path"])).resolve())
        if default_device and "device" not in entry:
            entry["device"] = default_device
        experts.append(entry)
    where = f"expert config {config_path}: "
    specs = [
        validate_config(ExpertSpec, e, raw, ExpertConfigError, top=f"expert '{e.get('name', f'#{i}')}'", prefix=where)
        for i, e in enumerate(experts)
    ]
    rules = [
        validate_config(RouteRule, r, raw, ExpertConfigError, top=f"routing rule #{i}", prefix=where)
        for i, r in enumerate(raw.get("routing") or [])
    ]
    resource = ExpertModels(experts=specs, routing=rules)
    names = [e.name for e in resource.experts]
    if len(set(names)) != len(names):
        raise ExpertConfigError(f"expert config {config_path}: duplicate expert names {names}")
    for rule in resource.routing:
        resource.spec(rule.expert)
    return resource
