"""Shared reading helpers of the corpus adapters (files, JSON lines, text and metadata cleaning)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from medtrinity_assets.knowledge.documents import MetadataValue
from medtrinity_assets.records import RejectError

SKIP_REASONS = ("empty_text", "html", "duplicate_id", "duplicate_text")
HTML_MARKUP = re.compile(  # tags of known HTML elements and common entities ('p <or = 5' is not markup)
    r"</?(?:p|br|div|span|a|b|i|u|em|strong|ul|ol|li|table|tr|td|th|h[1-6]|sup|sub|img|font|html|body|head"
    r"|script|style)(?:\s[^<>]*)?/?>|&(?:nbsp|amp|lt|gt|quot);",
    re.IGNORECASE,
)
RESERVED_METADATA_KEYS = frozenset({"corpus", "doc_id", "chunk_no", "title", "content_hash", "concept_ids"})
LIST_JOIN = "; "


def open_text(path: Path) -> IO[str]:
    """Open a text file, transparently gunzipping ``*.gz``."""
    if not path.is_file():
        raise RejectError("corpus_file_missing", f"{path} does not exist")
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a (gzipped) JSON-lines file."""
    with open_text(path) as fh:
        try:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RejectError("bad_corpus_record", f"{path} line {line_no}: not JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise RejectError("bad_corpus_record", f"{path} line {line_no}: expected a JSON object")
                yield line_no, obj
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise RejectError("bad_corpus_file", f"{path}: cannot be read ({exc})") from None


def clean_text(text: Any) -> str:
    """Collapse whitespace; None -> ''."""
    return " ".join(str(text).split()) if text is not None else ""


def scalar_metadata(values: dict[str, Any]) -> dict[str, MetadataValue]:
    """Metadata chromadb accepts: scalars kept, lists joined, dicts as JSON, None dropped.

    Keys that the chunk itself defines (corpus, doc_id, ...) are renamed ``source_<key>``.
    """
    out: dict[str, MetadataValue] = {}
    for key, value in values.items():
        name = f"source_{key}" if key in RESERVED_METADATA_KEYS else str(key)
        if value is None:
            continue
        if isinstance(value, bool | int | float | str):
            out[name] = value
        elif isinstance(value, list | tuple):
            out[name] = LIST_JOIN.join(clean_text(v) for v in value if v is not None)
        else:
            out[name] = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return out


def short_hash(*parts: str, length: int = 8) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:length]
