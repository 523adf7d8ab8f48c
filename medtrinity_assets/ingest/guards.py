"""Guards run before any decoder touches a file: root containment, existence, file kind, size budgets."""

from __future__ import annotations

import os
import re
import stat

from medtrinity_assets.records import RejectError


def check_within_root(path: str, root: str | None) -> str:
    """Resolved `path`, or RejectError('path_escapes_root') when it (or a symlink in it) leaves `root`.

    Symlinks are resolved on both sides, so a link inside the root pointing outside is refused,
    as is a ``..`` path. With no root (``None``/'') only the resolution is done.
    """
    real = os.path.realpath(path)
    if not root:
        return real
    real_root = os.path.realpath(root)
    if real != real_root and os.path.commonpath([real, real_root]) != real_root:
        raise RejectError("path_escapes_root", f"{os.path.basename(path)} resolves outside the source root")
    return real


def check_exists(path: str, what: str = "image") -> None:
    """RejectError('missing_file' / 'mask_missing') when `path` does not exist."""
    if not os.path.exists(path):
        reason = "mask_missing" if what == "mask" else "missing_file"
        raise RejectError(reason, f"{what} file not found: {os.path.basename(path)}")


def file_kind(path: str) -> str:
    """'file', 'directory', 'missing' or the kind of special file ('fifo', 'socket', 'device'), without opening it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def check_regular_file(path: str, what: str = "image") -> None:
    """RejectError('special_file') for a FIFO, socket or device: they are never opened (a FIFO blocks)."""
    kind = file_kind(path)
    if kind not in ("file", "directory", "missing"):
        raise RejectError("special_file", f"{what} {os.path.basename(path)} is a {kind}, not a regular file")


def check_pixel_budget(n_pixels: int, max_pixels: int, what: str = "image") -> None:
    """RejectError('decompression_bomb') when a header announces more pixels than allowed."""
    if n_pixels > max_pixels:
        raise RejectError(
            "decompression_bomb", f"{what} declares {n_pixels:,} pixels, above the limit of {max_pixels:,}"
        )


_DATA_FILE_KEYS = {
    "mha": re.compile(r"^\s*ElementDataFile\s*=\s*(.+?)\s*$", re.MULTILINE),
    "nrrd": re.compile(r"^\s*data ?file\s*:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE),
}


def referenced_data_files(path: str, fmt: str) -> list[str]:
    """Files a detached header (.mhd, .nhdr) points to, resolved relative to the header."""
    pattern = _DATA_FILE_KEYS.get(fmt)
    if pattern is None:
        return []
    with open(path, "rb") as fh:
        head = fh.read(8192)
    text = head.split(b"\n\n", 1)[0].decode("latin-1") if fmt == "nrrd" else head.decode("latin-1")
    found = []
    for match in pattern.finditer(text):
        value = match.group(1).split()[0] if match.group(1) else ""
        if value.upper() in ("LOCAL", "LIST") or not value or "%" in value:
            continue
        found.append(os.path.join(os.path.dirname(path), value))
    return found


def check_detached_data(path: str, fmt: str, root: str | None) -> None:
    """A detached header must not point at data outside the root (or at nothing)."""
    for data_file in referenced_data_files(path, fmt):
        check_within_root(data_file, root)
        check_regular_file(data_file, "data file")
        if not os.path.exists(data_file):
            raise RejectError(
                "missing_file", f"data file referenced by the header is missing: {os.path.basename(data_file)}"
            )
