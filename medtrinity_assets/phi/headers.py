"""Identity values of DICOM headers: read while an item is ingested, compared, never persisted in clear.

`read_identities` collects person names (every PN element, nested sequences included), patient
and accession IDs, institution and address fields and dates, as normalised phrases held in
memory only (`Identities.phrases`, hidden from repr). What persists is `phrase_hashes`: keyed
HMAC-SHA256 digests (the key is the patient salt, `MEDTRINITY_PATIENT_SALT`), which later stages
compare with the hashed word n-grams of output text (`text_hashes`).
"""

from __future__ import annotations

import glob
import hashlib
import hmac
import os
import warnings
from dataclasses import dataclass, field

from medtrinity_assets.ingest.deid import patient_salt
from medtrinity_assets.phi.patterns import normalise

MAX_TOKENS = 4  # phrases are compared on their first four words
MAX_FILES = 8  # a series directory: its first files' headers (one patient, one study)
HASH_DOMAIN = "medtrinity-phi-identity-v1"

_TEXT_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "StudyID",
    "RequestedProcedureID",
    "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequest",
)
_DATE_KEYWORDS = ("PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
_PLACEHOLDERS = {"anonymous", "anonymized", "anonymised", "unknown", "none", "n a", "na", "removed", "test", "patient", "xxx"}


@dataclass(frozen=True)
class Identities:
    """Normalised identity phrases of one item (in memory only)."""

    phrases: frozenset[str] = field(default=frozenset(), repr=False)

    def __bool__(self) -> bool:
        return bool(self.phrases)


def _keep(phrase: str) -> bool:
    """Long enough to identify and not a placeholder: several words, or one word with a digit
    (IDs) or of at least five letters (a single-component name)."""
    if not phrase or phrase in _PLACEHOLDERS or set(phrase) <= set("0 "):
        return False
    words = phrase.split()
    if len(words) >= 2:
        return len(phrase.replace(" ", "")) >= 4
    return len(phrase) >= 5 or (len(phrase) >= 4 and any(c.isdigit() for c in phrase))


def _cap(phrase: str) -> str:
    return " ".join(phrase.split()[:MAX_TOKENS])


def person_phrases(value: str) -> set[str]:
    """'FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX' -> 'family given middle', 'given middle family' ..."""
    out: set[str] = set()
    for group in str(value).split("=")[:1]:
        parts = [normalise(p) for p in group.split("^")]
        family, given = parts[0] if parts else "", " ".join(p for p in parts[1:3] if p)
        for phrase in (f"{family} {given}", f"{given} {family}", normalise(group)):
            phrase = " ".join(phrase.split())
            if _keep(phrase):
                out.add(_cap(phrase))
    return out


def date_phrases(value: str) -> set[str]:
    digits = "".join(c for c in str(value) if c.isdigit())
    if len(digits) != 8:
        return set()
    y, m, d = digits[:4], digits[4:6], digits[6:]
    return {digits, f"{y} {m} {d}", f"{d} {m} {y}", f"{m} {d} {y}"}


def dataset_phrases(ds) -> set[str]:
    """Identity phrases of one pydicom Dataset."""
    out: set[str] = set()
    for elem in ds.iterall():
        if elem.VR == "PN" and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            for v in values:
                out |= person_phrases(str(v))
        elif elem.keyword in _TEXT_KEYWORDS and elem.value:
            values = elem.value if elem.VM > 1 else [elem.value]
            for v in values:
                phrase = _cap(normalise(str(v)))
                if _keep(phrase):
                    out.add(phrase)
        elif elem.keyword in _DATE_KEYWORDS and elem.value:
            out |= date_phrases(str(elem.value))
    return out


def read_identities(path: str, fmt: str) -> Identities:
    """Identity phrases of a DICOM item (a file or a series directory); empty for other formats."""
    if fmt != "dicom":
        return Identities()
    import pydicom

    files = sorted(f for f in glob.glob(os.path.join(path, "**", "*"), recursive=True) if os.path.isfile(f))[:MAX_FILES] if os.path.isdir(path) else [path]
    phrases: set[str] = set()
    for f in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(f, stop_before_pixels=True, force=True)
            phrases |= dataset_phrases(ds)
        except Exception:  # noqa: BLE001 - the reader reports unreadable files; nothing to collect here
            continue
    return Identities(frozenset(phrases))


def _key(salt_env: str) -> bytes:
    return f"{HASH_DOMAIN}\x1f{patient_salt(salt_env)[0]}".encode()


def phrase_hashes(identities: Identities, salt_env: str = "MEDTRINITY_PATIENT_SALT") -> list[str]:
    """Keyed digests of the identity phrases (sorted; what the images manifest keeps)."""
    key = _key(salt_env)
    return sorted({hmac.new(key, p.encode(), hashlib.sha256).hexdigest()[:24] for p in identities.phrases})


def text_hashes(text: str, salt_env: str = "MEDTRINITY_PATIENT_SALT") -> set[str]:
    """Keyed digests of every 1..4-word n-gram of a text (to compare with `phrase_hashes`)."""
    words = normalise(text).split()
    key = _key(salt_env)
    grams = {" ".join(words[i : i + n]) for n in range(1, MAX_TOKENS + 1) for i in range(len(words) - n + 1)}
    return {hmac.new(key, g.encode(), hashlib.sha256).hexdigest()[:24] for g in grams}
