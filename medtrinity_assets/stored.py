"""Whether storage still holds what the Dagster instance says was materialised.

The instance ($DAGSTER_HOME) and the storage (MEDTRINITY_STORAGE, MEDTRINITY_KNOWLEDGE_DIR) are
configured apart. A new MEDTRINITY_HOME, a deleted `output/` or an emptied bucket leaves the
instance reporting partitions FRESH whose outputs are gone, and the runs after them fail to load
their inputs. `medtrinity demo` and `medtrinity backfill` therefore count a FRESH partition as
MISSING when storage lacks its output:

- an asset written by the manifest IO manager: its manifest, ``manifests/<asset>/<partition>.parquet``;
- ``knowledge_index[corpus]``: its manifest, and the corpus registered in the knowledge store's
  keyword index (``<knowledge dir>/keyword.sqlite``, beside the embedded or served chromadb);
- ``dataset_release[name]``: the release's ``checksums.sha256``.

Only these markers are checked (one existence check each), not every image a manifest lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from medtrinity_assets.dagster_client import stale_status
from medtrinity_assets.export.writer import CHECKSUMS_FILE, release_prefix
from medtrinity_assets.partitions import dataset_shard_key, split_key
from medtrinity_resources.io_manager import manifest_key
from medtrinity_resources.knowledge_store import KnowledgeStore
from medtrinity_resources.storage import MedtrinityStorage

Stored = Callable[[str, "str | None"], bool]


@dataclass(frozen=True)
class StoredOutputs:
    """Existence checks of assets' outputs in one storage and knowledge directory."""

    storage: MedtrinityStorage
    knowledge_dir: Path

    def corpora(self) -> set[str]:
        """Corpora registered in the knowledge store (none when its keyword index is absent: the
        store would create an empty one)."""
        if not (self.knowledge_dir / "keyword.sqlite").is_file():
            return set()
        return set(KnowledgeStore(persist_dir=str(self.knowledge_dir)).corpora())

    def holds(self, asset: str, partition: str | None) -> bool:
        """Whether storage holds the output of `asset` for `partition` ('dataset|shard', a corpus,
        a release name, or None when unpartitioned)."""
        if asset == "dataset_release":
            return self.storage.exists(release_prefix(str(partition)) + CHECKSUMS_FILE)
        key = dataset_shard_key(*split_key(partition)) if partition is not None and "|" in partition else partition
        if not self.storage.exists(manifest_key(asset, key)):
            return False
        return asset != "knowledge_index" or partition in self.corpora()


def with_storage(asset: str, status: Mapping[str | None, str], stored: Stored | None) -> dict[str | None, str]:
    """`status` (FRESH, STALE or MISSING per partition) with each FRESH partition whose output
    `stored` does not find counted as MISSING."""
    if stored is None:
        return dict(status)
    return {p: "MISSING" if s == "FRESH" and not stored(asset, p) else s for p, s in status.items()}


def storage_status(url: str, asset: str, partitions: Sequence[str] = (), stored: Stored | None = None) -> dict[str | None, str]:
    """Dagster's staleness of `asset` (through the webserver at `url`), checked against storage."""
    return with_storage(asset, stale_status(url, asset, partitions), stored)


def stored_from_settings() -> Stored:
    """The existence check for the configured storage and knowledge directory."""
    from medtrinity_assets import settings
    from medtrinity_assets.defs.resources import storage_from_settings

    return StoredOutputs(storage_from_settings(), Path(settings.knowledge_dir()).expanduser().resolve()).holds
