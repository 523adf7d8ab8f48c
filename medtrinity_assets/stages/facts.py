"""Typed facts <-> manifest columns: display frames, grid positions, relations, measurements.

The manifests hold these facts as typed columns (schema.FRAME_COLUMNS, POSITION_COLUMNS,
RELATION_STRUCT, MEASUREMENT_COLUMNS); the stages read them back into `records` dataclasses,
never by parsing wording.
"""

from __future__ import annotations

import json
from dataclasses import fields

from medtrinity_assets.records import DisplayFrame, GridPosition, Measurements, Relation
from medtrinity_assets.schema import FRAME_COLUMNS, MEASUREMENT_COLUMNS, POSITION_COLUMNS

#: Measurements fields stored in their own (non m_) columns
_OWN_COLUMNS = {"area_px": "area_px", "n_components": "n_components"}


def frame_columns(frame: DisplayFrame | None) -> dict:
    f = frame or DisplayFrame()
    return {
        "frame_plane": f.plane,
        "frame_lateral": f.lateral,
        "frame_up": f.up,
        "frame_anterior_side": f.anterior_side,
        "spacing_row_mm": None if f.spacing_rc is None else float(f.spacing_rc[0]),
        "spacing_col_mm": None if f.spacing_rc is None else float(f.spacing_rc[1]),
        "world_origin": None if f.world_origin is None else [float(v) for v in f.world_origin],
        "world_row_dir": None if f.world_row_dir is None else [float(v) for v in f.world_row_dir],
        "world_col_dir": None if f.world_col_dir is None else [float(v) for v in f.world_col_dir],
    }


def _triple(values) -> tuple[float, float, float] | None:
    return None if values is None else tuple(float(v) for v in values)  # type: ignore[return-value]


def frame_from_row(row: dict) -> DisplayFrame:
    spacing = None
    if row.get("spacing_row_mm") is not None and row.get("spacing_col_mm") is not None:
        spacing = (float(row["spacing_row_mm"]), float(row["spacing_col_mm"]))
    return DisplayFrame(
        plane=row.get("frame_plane"),
        lateral=row.get("frame_lateral"),
        up=row.get("frame_up"),
        anterior_side=row.get("frame_anterior_side"),
        world_origin=_triple(row.get("world_origin")),
        world_row_dir=_triple(row.get("world_row_dir")),
        world_col_dir=_triple(row.get("world_col_dir")),
        spacing_rc=spacing,
    )


def position_columns(position: GridPosition | None) -> dict:
    if position is None:
        return {k: None for k in POSITION_COLUMNS}
    return {
        "grid_row": position.row,
        "grid_col": position.col,
        "patient_side": position.patient_side,
        "patient_level": position.patient_level,
        "patient_depth": position.patient_depth,
    }


def position_from_row(row: dict) -> GridPosition | None:
    if row.get("grid_row") is None or row.get("grid_col") is None:
        return None
    return GridPosition(
        row=int(row["grid_row"]),
        col=int(row["grid_col"]),
        patient_side=row.get("patient_side"),
        patient_level=row.get("patient_level"),
        patient_depth=row.get("patient_depth"),
    )


def relation_structs(relations: list[Relation]) -> list[dict]:
    return [{"kind": r.kind, "other": r.other, "direction": r.direction, "count": int(r.count)} for r in relations]


def relations_from_row(row: dict) -> list[Relation]:
    return [Relation(r["kind"], r["other"], r.get("direction"), int(r.get("count") or 1)) for r in (row.get("relations") or [])]


def measurement_columns(m: Measurements | None) -> dict:
    """The m_ columns (area_px / n_components are written by the geometry record)."""
    if m is None:
        return {k: None for k in MEASUREMENT_COLUMNS}
    out = {}
    for f in fields(Measurements):
        if f.name in _OWN_COLUMNS or f.name == "unmeasured":
            continue
        out[f"m_{f.name}"] = getattr(m, f.name)
    out["m_unmeasured"] = json.dumps(m.unmeasured, sort_keys=True) if m.unmeasured else None
    return out


def measurements_from_row(row: dict) -> Measurements | None:
    if row.get("m_intensity_unit") is None and row.get("m_unmeasured") is None:
        return None
    values = {f.name: row.get(f"m_{f.name}") for f in fields(Measurements) if f.name not in _OWN_COLUMNS and f.name != "unmeasured"}
    values.update({name: row.get(col) for name, col in _OWN_COLUMNS.items()})
    values["unmeasured"] = json.loads(row["m_unmeasured"]) if row.get("m_unmeasured") else {}
    return Measurements(**values)

