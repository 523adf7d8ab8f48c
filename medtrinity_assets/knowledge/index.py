"""Incremental index build: embed only new or changed chunks, delete chunks that went away."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from typing import Any

from medtrinity_assets.knowledge.documents import Chunk
from medtrinity_assets.records import RejectError

EMBED_BATCH = 512  # chunks embedded and written per round (bounded memory, steady progress)


def plan_index_update(
    indexed: dict[str, str], held_ids: set[str], chunks: Sequence[Chunk]
) -> tuple[list[Chunk], list[str]]:
    """(chunks to embed, chunk ids to delete).

    `indexed`: id -> content hash of chunks fully indexed; `held_ids`: every id either side holds
    (ids held by one side only, left by an interrupted build, are rewritten or deleted).
    """
    wanted = {c.chunk_id for c in chunks}
    to_embed = [c for c in chunks if indexed.get(c.chunk_id) != c.content_hash]
    return to_embed, sorted((held_ids | set(indexed)) - wanted)


def check_unique_ids(corpus_name: str, chunks: Sequence[Chunk]) -> None:
    seen: set[str] = set()
    for c in chunks:
        if c.corpus != corpus_name:
            raise RejectError("wrong_corpus", f"chunk {c.chunk_id!r} belongs to {c.corpus!r}, not {corpus_name!r}")
        if c.chunk_id in seen:
            raise RejectError("duplicate_chunk_id", f"corpus {corpus_name!r}: chunk id {c.chunk_id!r} occurs twice")
        seen.add(c.chunk_id)


def build_index(
    store: Any, embedder: Any, corpus_name: str, chunks: Sequence[Chunk], progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Bring `store`'s index of `corpus_name` in line with `chunks`; `progress(done, total)` is called
    after every embedded batch (chunks embedded so far, chunks to embed).

    Chunks whose id and content hash are already indexed (on both the dense and keyword side) are
    not re-embedded; indexed chunks absent from `chunks` are deleted; switching embedder drops and
    rebuilds the corpus. Returns n_chunks, n_embedded, n_deleted, seconds (model loading excluded),
    chunks_per_s (embedded chunks per second of build time) and the embedder id.
    """
    check_unique_ids(corpus_name, chunks)
    model_id, dimension = embedder.model_id, embedder.dimension  # loads the model: not index time
    start = time.perf_counter()
    n_dropped = store.ensure_corpus(corpus_name, model_id, dimension)
    indexed, held_ids = store.index_state(corpus_name)
    to_embed, stale = plan_index_update(indexed, held_ids, chunks)
    n_deleted = store.delete(corpus_name, stale) + n_dropped
    batches = [to_embed[i : i + EMBED_BATCH] for i in range(0, len(to_embed), EMBED_BATCH)]
    done = 0
    # the next batch is embedded on a worker thread while this one is written (both release the GIL)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(embedder.embed, [c.embedding_text for c in batches[0]]) if batches else None
        for i, batch in enumerate(batches):
            vectors = pending.result()  # type: ignore[union-attr]
            if i + 1 < len(batches):
                pending = pool.submit(embedder.embed, [c.embedding_text for c in batches[i + 1]])
            store.upsert(corpus_name, batch, vectors)
            done += len(batch)
            if progress is not None:
                progress(done, len(to_embed))
    seconds = time.perf_counter() - start
    return {
        "corpus": corpus_name,
        "n_chunks": len(chunks),
        "n_embedded": len(to_embed),
        "n_deleted": n_deleted,
        "seconds": round(seconds, 3),
        "chunks_per_s": round(len(to_embed) / seconds, 2) if seconds > 0 and to_embed else 0.0,
        "embedder": model_id,
    }
