"""PHI scan of output text fields: patterns and the hashed identity values of DICOM headers.

A hit is reported as ``phi_text:<field>:<kind>`` (kind: date, time, id, phone, email, postal, name,
header_name); the value that matched is never part of the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from medtrinity_assets.phi.headers import text_hashes
from medtrinity_assets.phi.patterns import text_kinds


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        return " ; ".join(str(v) for v in value if v is not None)
    return str(value)


def field_reasons(fields: Mapping[str, object], identity_hashes: Iterable[str] = (), salt_env: str = "MEDTRINITY_PATIENT_SALT") -> list[str]:
    """``phi_text:<field>:<kind>`` for every field whose text looks like PHI (sorted, unique)."""
    known = set(identity_hashes)
    reasons: set[str] = set()
    for name, value in fields.items():
        text = _as_text(value)
        if not text.strip():
            continue
        reasons.update(f"phi_text:{name}:{kind}" for kind in text_kinds(text))
        if known and not known.isdisjoint(text_hashes(text, salt_env)):
            reasons.add(f"phi_text:{name}:header_name")
    return sorted(reasons)
