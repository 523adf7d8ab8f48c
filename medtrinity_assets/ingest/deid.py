"""De-identification: only whitelisted technical DICOM fields ever leave the reader.

Nothing is copied from a header by default; `technical_meta` reads a fixed list of technical
attributes and normalises each to a short code or number, so free text (names, IDs, dates,
institutions, comments, descriptions) cannot leak. PatientID is used only through
`patient_hash` (salted SHA-256) for split grouping.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

#: used when the salt environment variable is unset; documented so hashes are reproducible,
#: set MEDTRINITY_PATIENT_SALT (policy.patient_salt_env) to a secret for a private release.
DEFAULT_PATIENT_SALT = "medtrinity-public-default-salt-v1"

_CODE_RE = re.compile(r"[^A-Z0-9_ ]")

# DICOM code-string (CS) attributes kept, normalised to [A-Z0-9_ ], max 32 chars
_CODE_FIELDS = {
    "Modality": "modality_header",
    "BodyPartExamined": "body_part",
    "PhotometricInterpretation": "photometric",
    "PatientPosition": "patient_position",
    "ViewPosition": "view_position",
    "Laterality": "laterality",
    "ImageLaterality": "image_laterality",
    "RescaleType": "rescale_type",
    "LossyImageCompression": "lossy_compression",
}
_INT_FIELDS = {
    "Rows": "rows",
    "Columns": "columns",
    "BitsAllocated": "bits_allocated",
    "BitsStored": "bits_stored",
    "PixelRepresentation": "pixel_representation",
    "SamplesPerPixel": "samples_per_pixel",
    "NumberOfFrames": "n_frames",
}
_FLOAT_FIELDS = {
    "SliceThickness": "slice_thickness",
    "SpacingBetweenSlices": "spacing_between_slices",
    "MagneticFieldStrength": "field_strength_t",
    "KVP": "kvp",
    "EchoTime": "echo_time_ms",
    "RepetitionTime": "repetition_time_ms",
}


def code_value(value: Any, max_len: int = 32) -> str:
    """A CS-like value reduced to [A-Z0-9_ ] (multi-valued joined with '\\'-free '/')."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "/".join(str(v) for v in value)
    else:
        text = str(value)
    return _CODE_RE.sub("", text.upper().replace("/", " "))[:max_len].strip()


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and abs(out) != float("inf") else None


def technical_meta(ds: Any) -> dict[str, Any]:
    """Whitelisted, normalised technical fields of a pydicom Dataset (PHI-free)."""
    meta: dict[str, Any] = {}
    for keyword, key in _CODE_FIELDS.items():
        value = code_value(ds.get(keyword))
        if value:
            meta[key] = value
    for keyword, key in _INT_FIELDS.items():
        number = _number(ds.get(keyword))
        if number is not None:
            meta[key] = int(number)
    for keyword, key in _FLOAT_FIELDS.items():
        number = _number(ds.get(keyword))
        if number is not None:
            meta[key] = number
    sop_class = ds.get("SOPClassUID")
    if sop_class is not None:
        meta["sop_class"] = standard_uid_name(sop_class)
    burned = code_value(ds.get("BurnedInAnnotation"))
    meta["burned_in_annotation"] = {"YES": True, "NO": False}.get(burned)
    image_type = ds.get("ImageType")
    if image_type:
        meta["image_type"] = [code_value(v, 16) for v in list(image_type)[:4]]
    return meta


def standard_uid_name(uid: Any) -> str:
    """Name of a UID from the DICOM standard's registry; 'private' for any other UID (never echoed)."""
    name = str(getattr(uid, "name", "") or "")
    if not name or name == str(uid):
        return "private"
    return re.sub(r"[^A-Za-z0-9 ()\[\],.\-]", "", name)[:96]


def transfer_syntax_meta(ds: Any) -> dict[str, Any]:
    """Transfer syntax name and UID when it is a standard one (public identifiers, not PHI)."""
    fm = getattr(ds, "file_meta", None)
    uid = fm.get("TransferSyntaxUID") if fm is not None else None
    if uid is None:
        return {"transfer_syntax": "", "transfer_syntax_uid": ""}
    name = standard_uid_name(uid)
    return {"transfer_syntax": name, "transfer_syntax_uid": str(uid) if name != "private" else "private"}


def patient_salt(env_var: str) -> tuple[str, str]:
    """(salt, source) where source is 'env' or 'default'."""
    value = os.environ.get(env_var, "")
    return (value, "env") if value else (DEFAULT_PATIENT_SALT, "default")


def patient_hash(patient_id: str, env_var: str = "MEDTRINITY_PATIENT_SALT") -> str:
    """Salted SHA-256 of a patient identifier ('' when the identifier is unknown/empty)."""
    pid = (patient_id or "").strip()
    if not pid:
        return ""
    salt, _ = patient_salt(env_var)
    return hashlib.sha256(f"{salt}\x1f{pid}".encode()).hexdigest()


_QUOTED_RE = re.compile(r"'[^']*'|\"[^\"]*\"")
_LONG_NUMBER_RE = re.compile(r"\d{8,}")


def safe_error_text(exc: BaseException, limit: int = 300) -> str:
    """'Type: message' of an exception with quoted values and long digit runs (dates, IDs) redacted.

    Decoder messages can echo header values (e.g. an unparsable date); reject details are
    persisted, so they never carry them.
    """
    first_line = (str(exc).strip().splitlines() or [""])[0]
    text = _LONG_NUMBER_RE.sub("#", _QUOTED_RE.sub("'…'", first_line))
    return f"{type(exc).__name__}: {text}"[:limit]
