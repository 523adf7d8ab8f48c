"""De-identification: only whitelisted technical DICOM fields ever leave the reader.

Nothing is copied from a header by default; `technical_meta` reads a fixed list of technical
attributes. Code-string attributes keep a value only when it is one of the defined terms in
``ingest/dicom_terms.yaml`` (they are free text in practice: a name typed into Body Part
Examined or Image Type is dropped, not upper-cased and kept); numbers are kept as numbers.
Free text (names, IDs, dates, institutions, comments, descriptions) cannot leak. PatientID is
used only through `patient_hash` (salted SHA-256) for split grouping. Exception messages are
reduced by `safe_error_text` before they reach a rejects table.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

#: used when the salt environment variable is unset; documented so hashes are reproducible,
#: set MEDTRINITY_PATIENT_SALT (policy.patient_salt_env) to a secret for a private release.
DEFAULT_PATIENT_SALT = "medtrinity-public-default-salt-v1"

TERMS_FILE = Path(__file__).with_name("dicom_terms.yaml")
_CODE_RE = re.compile(r"[^A-Z0-9_ ]")
_TERM_KEY_RE = re.compile(r"[^A-Z0-9]")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeField(_Strict):
    key: str  # the meta key
    terms: list[str]


class DicomTerms(_Strict):
    fields: dict[str, CodeField]
    image_type_terms: list[str]


def _term_key(value: str) -> str:
    return _TERM_KEY_RE.sub("", value.upper())


@lru_cache(maxsize=1)
def dicom_terms() -> tuple[dict[str, tuple[str, dict[str, str]]], dict[str, str]]:
    """({keyword: (meta key, {term key: term})}, {image type term key: term}) from the data file."""
    terms = DicomTerms.model_validate(yaml.safe_load(TERMS_FILE.read_text()))
    fields = {kw: (f.key, {_term_key(t): t for t in f.terms}) for kw, f in terms.fields.items()}
    return fields, {_term_key(t): t for t in terms.image_type_terms}


def defined_term(value: Any, allowed: dict[str, str]) -> str:
    """The defined term `value` spells (multi-valued: the first value), or '' when it is not one."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = next(iter(value), "")
    return allowed.get(_term_key(str(value)), "")


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
    """Whitelisted, value-checked technical fields of a pydicom Dataset (PHI-free).

    ``header_values_dropped`` counts code attributes present but not a defined term.
    """
    meta: dict[str, Any] = {}
    fields, image_type_terms = dicom_terms()
    dropped = 0
    for keyword, (key, allowed) in fields.items():
        raw = ds.get(keyword)
        value = defined_term(raw, allowed)
        if value:
            meta[key] = value
        elif code_value(raw):
            dropped += 1
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
        values = [str(v) for v in (image_type if not isinstance(image_type, str) else [image_type])][:4]
        kept = [image_type_terms.get(_term_key(v), "") for v in values]
        dropped += sum(1 for v, k in zip(values, kept) if v.strip() and not k)
        meta["image_type"] = [k or "OTHER" for k in kept]
    if dropped:
        meta["header_values_dropped"] = dropped
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


_QUOTED_RE = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`|\[[^\]]*\]|\{[^}]*\}|<[^>]*>")
_SAFE_WORD_RE = re.compile(r"^[a-z][a-z_()\-]*[a-z)]?[.,;:]?$|^[.,;:()\-]$")


def redact_text(message: str) -> str:
    """The first line of `message` with every word that could carry a value replaced by '…'."""
    first_line = (message.strip().splitlines() or [""])[0]
    words: list[str] = []
    for word in _QUOTED_RE.sub(" … ", first_line).split():
        kept = word if _SAFE_WORD_RE.match(word) else "…"
        if not (kept == "…" and words and words[-1] == "…"):
            words.append(kept)
    return " ".join(words)


def safe_error_text(exc: BaseException, limit: int = 300) -> str:
    """'Type: message' of an exception with every word that could carry a value withheld.

    Decoder messages echo header values (a name, a date, a VOI LUT entry), quoted or not; reject
    details are persisted, so only the exception type (with the errno name of an OSError) and the
    message's lower-case words are kept: quoted or bracketed parts, numbers, and any word with
    capitals, digits or symbols become '…'.
    """
    text = redact_text(str(exc))
    code = errno.errorcode.get(exc.errno, "") if isinstance(exc, OSError) and isinstance(exc.errno, int) else ""
    name = f"{type(exc).__name__}[{code}]" if code else type(exc).__name__
    return f"{name}: {text}"[:limit] if text else name


class _RedactedLibraryLog(logging.Filter):
    """Drops a library's debug records and reduces its warnings to value-free words."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        record.msg, record.args = redact_text(record.getMessage()), None
        return True


def redact_library_logs() -> None:
    """Library loggers that echo file contents keep only value-free warnings.

    pydicom logs every value warning ("Invalid value for VR ...: '<the value>'") whatever the
    warnings filters say; Pillow's TIFF/EXIF plugin logs tag values (an EXIF Artist name) at
    debug level. Filters are per logger, so every Pillow plugin logger gets one.
    """
    from PIL import Image

    Image.init()
    names = ["pydicom", "tifffile", *(n for n in list(logging.root.manager.loggerDict) if n == "PIL" or n.startswith("PIL."))]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactedLibraryLog) for f in logger.filters):
            logger.addFilter(_RedactedLibraryLog())
