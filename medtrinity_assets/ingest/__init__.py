"""Ingestion at source fidelity: source file -> display-ready 2D slices with aligned GT masks.

Public API (what the Dagster assets call):

- `IngestPolicy`                       slicing / intensity / output-size rules (per source)
- `load_item(item, policy)`            -> list[Slice2D]; RejectError(reason, detail) on bad input
- `load_items(items, policy)`          -> ({(dataset, item_id): slices}, [reject rows]); never raises
- `encode_png(pixels)`                 deterministic PNG bytes
- `pixel_hashes(pixels)`               (sha256, perceptual hash); `image_signature(pixels)` (16x16 thumbnail)
- `near_duplicate(a, b, max_distance)` perceptual-hash comparison (hash only)
- `dedup_flags(records)`, `PhashIndex` the one near-duplicate search (hash candidates confirmed on pixels)
- `check_within_root(path, root)`      path / symlink containment guard
- `check_regular_file(path)`           FIFOs, sockets and devices refused before anything opens them
- `detect_format(path)`, `SUPPORTED_FORMATS`
- `REJECT_REASONS`                     every reject reason code with its meaning
"""

from medtrinity_assets.ingest.deid import redact_library_logs
from medtrinity_assets.ingest.formats import SUPPORTED_FORMATS, detect_format
from medtrinity_assets.ingest.guards import check_regular_file, check_within_root
from medtrinity_assets.ingest.hashing import PhashIndex, dedup_flags, encode_png, image_signature, near_duplicate, pixel_hashes
from medtrinity_assets.ingest.load import load_item, load_items
from medtrinity_assets.ingest.policy import IngestPolicy
from medtrinity_assets.ingest.reasons import REJECT_REASONS

redact_library_logs()  # decoders' own logs never carry header values or file metadata

__all__ = [
    "REJECT_REASONS",
    "SUPPORTED_FORMATS",
    "IngestPolicy",
    "PhashIndex",
    "check_regular_file",
    "check_within_root",
    "dedup_flags",
    "detect_format",
    "encode_png",
    "image_signature",
    "load_item",
    "load_items",
    "near_duplicate",
    "pixel_hashes",
]
