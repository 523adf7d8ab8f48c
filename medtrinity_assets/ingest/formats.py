"""Format detection from content (magic bytes), and the check that content matches the declared format."""

from __future__ import annotations

import gzip
import os
import struct
import zlib

from medtrinity_assets.ingest.guards import check_regular_file
from medtrinity_assets.records import RejectError

SUPPORTED_FORMATS: tuple[str, ...] = ("dicom", "nifti", "nrrd", "mha", "png", "jpeg", "tiff")

#: recognised but not ingested (reason ``unsupported_format``)
KNOWN_UNSUPPORTED = ("bmp", "gif", "webp", "analyze", "zip", "pdf")

#: the project's one file-extension table: format -> extensions (multi-part ones first)
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "nifti": (".nii.gz", ".nii"),
    "nrrd": (".nrrd", ".nhdr"),
    "mha": (".mha", ".mhd"),
    "dicom": (".dcm", ".dicom", ".ima"),
    "png": (".png",),
    "jpeg": (".jpg", ".jpeg", ".jpe"),
    "tiff": (".tif", ".tiff"),
    "bmp": (".bmp",),
    "gif": (".gif",),
    "webp": (".webp",),
    "analyze": (".hdr", ".img"),
    "zip": (".zip",),
    "pdf": (".pdf",),
    "text": (".txt", ".json", ".jsonl", ".md", ".csv"),  # side files: never items
}
#: image files a benchmark folder may hold (everything Pillow decodes)
BENCHMARK_IMAGE_SUFFIXES: tuple[str, ...] = tuple(
    e for f in ("png", "jpeg", "bmp", "gif", "tiff", "webp") for e in EXTENSIONS[f]
)
_BY_LENGTH = sorted(((e, f) for f, exts in EXTENSIONS.items() for e in exts), key=lambda t: -len(t[0]))


def known_extension(name: str) -> str:
    """The table's extension `name` ends with (case-insensitive, longest first), or ''."""
    low = name.lower()
    return next((e for e, _ in _BY_LENGTH if low.endswith(e)), "")


def strip_extension(name: str) -> str:
    """Base name without its known extension (``a.nii.gz`` -> ``a``); other names lose their last suffix."""
    base = os.path.basename(name)
    ext = known_extension(base)
    if ext:
        return base[: -len(ext)]
    return os.path.splitext(base)[0]


def format_from_name(path: str) -> str:
    """Format implied by the file name ('' when the name says nothing; 'dicom' for a directory)."""
    if os.path.isdir(path):
        return "dicom"
    ext = known_extension(path)
    return next((f for e, f in _BY_LENGTH if e == ext), "") if ext else ""


def read_head(path: str, n: int) -> bytes:
    """First `n` bytes of a regular file, opened non-blocking (RejectError('special_file') otherwise)."""
    check_regular_file(path, "file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        return fh.read(n)


def _is_nifti_header(head: bytes) -> bool:
    if len(head) >= 348:
        for endian in ("<", ">"):
            (size,) = struct.unpack(endian + "i", head[:4])
            if size == 348 and head[344:348] in (b"n+1\x00", b"ni1\x00"):
                return True
            if size == 540 and head[4:8] in (b"n+2\x00", b"ni2\x00"):
                return True
    return False


def _looks_like_mha(head: bytes) -> bool:
    try:
        text = head[:2048].decode("ascii", errors="strict")
    except UnicodeDecodeError:
        text = head[:2048].split(b"\n\x00", 1)[0].decode("ascii", errors="ignore")
    keys = {line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line}
    return "NDims" in keys and ("ElementType" in keys or "ElementDataFile" in keys or "DimSize" in keys)


def _looks_like_dicom_without_preamble(head: bytes) -> bool:
    """A DICOM data set written without the 128-byte preamble starts with group 0002 or 0008."""
    if len(head) < 8 or head[:2] not in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08"):
        return False
    vr = head[4:6]
    if vr.isalpha() and vr.isupper():  # explicit VR (little or big endian)
        return True
    if head[:2] in (b"\x00\x02", b"\x00\x08"):
        return False
    (length,) = struct.unpack("<I", head[4:8])  # implicit VR: a plausible element length
    return length < 1024


def _gunzip_head(path: str, n: int) -> bytes:
    with gzip.open(path, "rb") as fh:
        return fh.read(n)


def detect_format(path: str) -> str:
    """Format from the content: one of SUPPORTED_FORMATS, a known unsupported one, 'empty', or 'unknown'.

    A directory is a DICOM series ('dicom'). A gzip stream is opened to look at the NIfTI header.
    """
    if os.path.isdir(path):
        return "dicom"
    head = read_head(path, 2048)
    if not head:
        return "empty"
    if len(head) >= 132 and head[128:132] == b"DICM":  # before TIFF: a DICOM preamble may hold a TIFF header
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"NRRD000"):
        return "nrrd"
    if head.startswith(b"\x1f\x8b"):
        try:
            inner = _gunzip_head(path, 2048)
        except (OSError, EOFError, zlib.error):
            return "unknown"
        if _is_nifti_header(inner):
            return "nifti"
        return "unknown"
    if _is_nifti_header(head):
        return "nifti"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"%PDF"):
        return "pdf"
    if _looks_like_mha(head):
        return "mha"
    if _looks_like_dicom_without_preamble(head):
        return "dicom"
    return "unknown"


def resolve_format(path: str, declared: str) -> str:
    """The format to read `path` with, or RejectError when content and declaration disagree.

    `declared` is the catalog's format ('auto'/'unknown'/'' fall back to the file name).
    Reasons: ``zero_byte_file``, ``unsupported_format``, ``wrong_extension`` (content is another
    known format), ``corrupt_file`` (content is not recognisable as the declared format).
    """
    declared = (declared or "").lower()
    by_name = format_from_name(path)
    expected = declared if declared in SUPPORTED_FORMATS else by_name
    if declared and declared not in SUPPORTED_FORMATS and declared not in ("auto", "unknown"):
        raise RejectError("unsupported_format", f"declared format '{declared}' is not one of {SUPPORTED_FORMATS}")
    sniffed = detect_format(path)
    if sniffed == "empty":
        raise RejectError("zero_byte_file", "the file is empty")
    if expected and expected not in SUPPORTED_FORMATS:
        raise RejectError("unsupported_format", f"'{os.path.basename(path)}' is a {expected} file, not ingestible")
    if not expected:
        if sniffed in SUPPORTED_FORMATS:
            return sniffed
        raise RejectError("unsupported_format", f"no supported format recognised (content: {sniffed})")
    if sniffed == expected:
        if by_name and by_name != expected and by_name in SUPPORTED_FORMATS:
            raise RejectError("wrong_extension", f"file name says {by_name}, content is {sniffed}")
        return expected
    if sniffed == "unknown":
        raise RejectError("corrupt_file", f"content is not a recognisable {expected} file")
    raise RejectError("wrong_extension", f"declared {expected}, but the content is {sniffed}")
