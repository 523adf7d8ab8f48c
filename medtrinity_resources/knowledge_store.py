"""KnowledgeStore: chromadb collections (dense) + a SQLite FTS5 table (keyword, bm25).

One chromadb collection per corpus (cosine space, named ``<collection_prefix><corpus>``),
embedded and persistent under `persist_dir`, or on a chroma server when `url` is set. Embeddings
are always passed in explicitly: no chromadb embedding function is ever used (its default
downloads a model). The keyword side lives in ``<persist_dir>/keyword.sqlite`` and holds the same
chunk ids; a chunk counts as indexed only when both sides hold it with the same content hash.
The SQL of the keyword side (FTS5, concept and name lookups) is in `keyword_index`. chromadb
holds only ids, vectors and each chunk's content hash (texts and metadata live in SQLite once:
writing them to chroma as well tripled the build time).

Embedded chromadb is single-process: run index builds one at a time (or use a chroma server).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from dagster import ConfigurableResource

from medtrinity_assets.records import KnowledgeChunk
from medtrinity_resources.keyword_index import (
    CHUNK_COLUMNS,
    SCHEMA_VERSION,
    Hit,
    StoredChunk,
    add_filters,
    batches,
    concept_key,
    delete_chunks,
    insert_chunks,
    migrate,
    name_key,
    stored_chunk,
)

__all__ = ["SCHEMA_VERSION", "Hit", "KnowledgeStore", "StoredChunk"]
TITLE_WEIGHT = 2.0  # bm25 column weights: (title, text)
TEXT_WEIGHT = 1.0
_PAGE = 5000
_CLIENTS: dict[str, Any] = {}
_CLIENT_LOCK = threading.Lock()
_SCHEMA_READY: set[str] = set()


def chroma_client(persist_dir: Path, url: str) -> Any:
    """A process-wide chromadb client: HttpClient for `url`, else PersistentClient at persist_dir/chroma."""
    import chromadb
    from chromadb.config import Settings

    key = url or str(persist_dir)
    with _CLIENT_LOCK:
        if key not in _CLIENTS:
            settings = Settings(anonymized_telemetry=False)
            if url:
                parsed = urlparse(url if "://" in url else f"http://{url}")
                ssl = parsed.scheme == "https"
                _CLIENTS[key] = chromadb.HttpClient(
                    host=parsed.hostname or "localhost",
                    port=parsed.port or (443 if ssl else 8000),
                    ssl=ssl,
                    settings=settings,
                )
            else:
                (persist_dir / "chroma").mkdir(parents=True, exist_ok=True)
                _CLIENTS[key] = chromadb.PersistentClient(path=str(persist_dir / "chroma"), settings=settings)
        return _CLIENTS[key]


class _Connections(threading.local):
    """Per-thread SQLite connections by path (a connection may not cross threads)."""

    def __init__(self) -> None:
        self.by_path: dict[str, tuple[int, int, sqlite3.Connection]] = {}  # path -> (pid, inode, connection)


_CONNECTIONS = _Connections()


def keyword_connection(path: Path) -> sqlite3.Connection:
    """This thread's open connection to the keyword index at `path`, migrated on first use.

    A lookup reuses it (a policy query makes ~10 lookups); a new one is opened in a forked process
    or when the file was replaced (another inode, e.g. a deleted and rebuilt index).
    """
    key = str(path)
    cached = _CONNECTIONS.by_path.get(key)
    try:
        inode = path.stat().st_ino
    except FileNotFoundError:
        inode = -1
    if cached is not None and cached[0] == os.getpid() and cached[1] == inode:
        return cached[2]
    if cached is not None and cached[0] == os.getpid():
        cached[2].close()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60)
    conn.execute("PRAGMA synchronous=NORMAL")
    if key not in _SCHEMA_READY or inode == -1 or not path.stat().st_size:
        conn.execute("PRAGMA journal_mode=WAL")
        migrate(conn)
        _SCHEMA_READY.add(key)
    _CONNECTIONS.by_path[key] = (os.getpid(), path.stat().st_ino, conn)
    return conn


class KnowledgeStore(ConfigurableResource):
    """Dense (chromadb) + keyword (SQLite FTS5) chunk store, one collection per corpus."""

    persist_dir: str = ".medtrinity/knowledge"  # relative to the working directory unless absolute
    url: str = ""  # chroma server URL (http[s]://host:port); the keyword index stays in persist_dir
    collection_prefix: str = "kb_"

    # ------------------------------------------------------------ plumbing

    def root(self) -> Path:
        return Path(self.persist_dir).expanduser().resolve()

    def client(self) -> Any:
        return chroma_client(self.root(), self.url)

    def collection_name(self, corpus: str) -> str:
        return f"{self.collection_prefix}{corpus}"

    def _collection(self, corpus: str, create: bool = False) -> Any | None:
        client = self.client()
        name = self.collection_name(corpus)
        if create:
            return client.get_or_create_collection(
                name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
        try:
            return client.get_collection(name, embedding_function=None)
        except Exception:  # chromadb raises NotFoundError / ValueError depending on version
            return None

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection to ``keyword.sqlite`` inside one transaction (commit, or rollback on error)."""
        conn = keyword_connection(self.root() / "keyword.sqlite")
        with conn:
            yield conn

    # ------------------------------------------------------------ corpora

    def corpora(self) -> list[str]:
        """Corpora registered in this store (sorted)."""
        with self._db() as db:
            return [r[0] for r in db.execute("SELECT corpus FROM corpora ORDER BY corpus")]

    def embedder_of(self, corpus: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT embedder FROM corpora WHERE corpus = ?", (corpus,)).fetchone()
        return row[0] if row else None

    def ensure_corpus(self, corpus: str, embedder_id: str, dimension: int) -> int:
        """Register `corpus` for `embedder_id`; when it was built with another embedder, drop it first.

        Returns the number of chunks dropped.
        """
        with self._db() as db:
            row = db.execute("SELECT embedder, dimension FROM corpora WHERE corpus = ?", (corpus,)).fetchone()
        dropped = 0
        if row is not None and (row[0] != embedder_id or int(row[1]) != dimension):
            dropped = self.drop_corpus(corpus)
        self._collection(corpus, create=True)
        with self._db() as db:
            db.execute(
                "INSERT INTO corpora(corpus, embedder, dimension) VALUES (?, ?, ?) "
                "ON CONFLICT(corpus) DO UPDATE SET embedder = excluded.embedder, dimension = excluded.dimension",
                (corpus, embedder_id, int(dimension)),
            )
        return dropped

    def drop_corpus(self, corpus: str) -> int:
        """Remove a corpus from both sides; returns how many chunk ids it held."""
        n = len(self.chunk_ids(corpus))
        if self._collection(corpus) is not None:
            self.client().delete_collection(self.collection_name(corpus))
        with self._db() as db:
            db.execute("DELETE FROM chunks WHERE corpus = ?", (corpus,))
            db.execute("DELETE FROM corpora WHERE corpus = ?", (corpus,))
        return n

    # ------------------------------------------------------------ chunk bookkeeping

    def _dense_hashes(self, corpus: str) -> dict[str, str]:
        col = self._collection(corpus)
        if col is None:
            return {}
        out: dict[str, str] = {}
        offset = 0
        while True:
            page = col.get(include=["metadatas"], limit=_PAGE, offset=offset)
            for cid, meta in zip(page["ids"], page["metadatas"] or [], strict=False):
                out[cid] = str((meta or {}).get("content_hash", ""))
            if len(page["ids"]) < _PAGE:
                return out
            offset += _PAGE

    def _keyword_hashes(self, corpus: str) -> dict[str, str]:
        with self._db() as db:
            return dict(db.execute("SELECT chunk_id, content_hash FROM chunks WHERE corpus = ?", (corpus,)))

    def index_state(self, corpus: str) -> tuple[dict[str, str], set[str]]:
        """(id -> content hash of chunks held by BOTH sides with the same hash, every id either side holds)."""
        dense, keyword = self._dense_hashes(corpus), self._keyword_hashes(corpus)
        consistent = {cid: h for cid, h in keyword.items() if dense.get(cid) == h}
        return consistent, set(dense) | set(keyword)

    def chunk_hashes(self, corpus: str) -> dict[str, str]:
        """chunk id -> content hash for chunks held by BOTH sides with the same hash."""
        return self.index_state(corpus)[0]

    def chunk_ids(self, corpus: str) -> set[str]:
        """Every chunk id either side holds for `corpus`."""
        return self.index_state(corpus)[1]

    def count(self, corpus: str | None = None) -> int:
        """Chunks in the keyword index (all corpora when `corpus` is None)."""
        with self._db() as db:
            if corpus is None:
                return int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])
            return int(db.execute("SELECT count(*) FROM chunks WHERE corpus = ?", (corpus,)).fetchone()[0])

    def counts(self) -> dict[str, dict[str, int]]:
        """{corpus: {'dense': n, 'keyword': n}} for every registered corpus."""
        out = {}
        for corpus in self.corpora():
            col = self._collection(corpus)
            out[corpus] = {"dense": int(col.count()) if col is not None else 0, "keyword": self.count(corpus)}
        return out

    def upsert(self, corpus: str, chunks: Sequence[KnowledgeChunk], embeddings: np.ndarray) -> None:
        """Write chunks with their embeddings to both sides (dense first, then keyword)."""
        if len(chunks) != len(embeddings):
            raise ValueError(f"{len(chunks)} chunks but {len(embeddings)} embeddings")
        if not chunks:
            return
        wrong = [c.chunk_id for c in chunks if c.corpus != corpus]
        if wrong:
            raise ValueError(f"chunks of another corpus given for {corpus!r}: {wrong[:3]}")
        col = self._collection(corpus, create=True)
        batch = max(1, min(self.client().get_max_batch_size(), 4096))
        vectors = np.asarray(embeddings, dtype=np.float32)
        for start in range(0, len(chunks), batch):
            part = chunks[start : start + batch]
            col.upsert(
                ids=[c.chunk_id for c in part],
                embeddings=vectors[start : start + batch],
                metadatas=[{"content_hash": c.content_hash} for c in part],
            )
        with self._db() as db:
            insert_chunks(db, corpus, chunks)

    def delete(self, corpus: str, chunk_ids: Iterable[str]) -> int:
        """Delete chunk ids from both sides; returns how many ids were asked for."""
        ids = sorted(set(chunk_ids))
        if not ids:
            return 0
        col = self._collection(corpus)
        if col is not None:
            for part in batches(ids, 4096):
                col.delete(ids=list(part))
        with self._db() as db:
            delete_chunks(db, ids)
        return len(ids)

    # ------------------------------------------------------------ queries

    def chunk_ids_for_concepts(
        self, concept_ids: Iterable[str], corpora: Iterable[str] | None = None
    ) -> dict[str, list[str]]:
        """corpus -> chunk ids tagged with any of `concept_ids` (case-insensitive)."""
        keys = sorted({concept_key(c) for c in concept_ids if c})
        if not keys:
            return {}
        wanted = set(corpora) if corpora is not None else None
        out: dict[str, list[str]] = {}
        with self._db() as db:
            for part in batches(keys, 500):
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    "SELECT DISTINCT c.corpus, c.chunk_id FROM chunk_concepts k"
                    f" JOIN chunks c ON c.rowid = k.chunk_rowid WHERE k.concept_key IN ({marks})",
                    list(part),
                )
                for corpus, cid in rows:
                    if wanted is None or corpus in wanted:
                        out.setdefault(corpus, []).append(cid)
        return {corpus: sorted(set(ids)) for corpus, ids in out.items()}

    def dense_query(
        self,
        embeddings: np.ndarray,
        n_results: int,
        corpora: Iterable[str] | None = None,
        allowed_ids: dict[str, list[str]] | None = None,
    ) -> list[list[Hit]]:
        """For each query embedding, the `n_results` nearest chunks over the chosen corpora (by cosine)."""
        queries = np.asarray(embeddings, dtype=np.float32)
        if queries.ndim != 2:
            raise ValueError("embeddings must be a 2-D array (n_queries, dim)")
        results: list[list[Hit]] = [[] for _ in range(len(queries))]
        if len(queries) == 0 or n_results <= 0:
            return results
        names = list(corpora) if corpora is not None else self.corpora()
        for corpus in names:
            ids = None
            if allowed_ids is not None:
                ids = allowed_ids.get(corpus) or []
                if not ids:
                    continue
            col = self._collection(corpus)
            if col is None or col.count() == 0:
                continue
            found = col.query(query_embeddings=queries, n_results=n_results, ids=ids, include=["distances"])
            for qi, (cids, dists) in enumerate(zip(found["ids"], found["distances"] or [], strict=False)):
                results[qi].extend(Hit(cid, corpus, 1.0 - float(d)) for cid, d in zip(cids, dists, strict=False))
        return [sorted(hits, key=lambda h: (-h.score, h.chunk_id))[:n_results] for hits in results]

    def keyword_query(
        self,
        match_expression: str,
        n_results: int,
        corpora: Iterable[str] | None = None,
        concept_ids: Iterable[str] | None = None,
    ) -> list[Hit]:
        """bm25-ranked chunks for an FTS5 MATCH expression (already sanitised by the caller)."""
        if not match_expression.strip() or n_results <= 0:
            return []
        sql = [
            f"SELECT c.chunk_id, c.corpus, bm25(chunks_fts, {TITLE_WEIGHT}, {TEXT_WEIGHT}) AS rank",
            "FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid WHERE chunks_fts MATCH ?",
        ]
        params: list[Any] = [match_expression]
        if not add_filters(sql, params, corpora, concept_ids):
            return []
        sql.append("ORDER BY rank, c.chunk_id LIMIT ?")
        params.append(int(n_results))
        with self._db() as db:
            rows = db.execute(" ".join(sql), params).fetchall()
        return [Hit(cid, corpus, -float(rank)) for cid, corpus, rank in rows]

    def name_query(
        self,
        names: Iterable[str],
        n_results: int,
        corpora: Iterable[str] | None = None,
        concept_ids: Iterable[str] | None = None,
    ) -> list[str]:
        """Chunk ids of documents whose title or a synonym is exactly one of `names` (first chunks only)."""
        keys = sorted({name_key(n) for n in names} - {""})
        if not keys or n_results <= 0:
            return []
        sql = [
            "SELECT DISTINCT c.chunk_id FROM chunk_names n JOIN chunks c ON c.rowid = n.chunk_rowid",
            f"WHERE n.name_key IN ({','.join('?' * len(keys))})",
        ]
        params: list[Any] = list(keys)
        if not add_filters(sql, params, corpora, concept_ids):
            return []
        sql.append("ORDER BY c.chunk_id LIMIT ?")
        params.append(int(n_results))
        with self._db() as db:
            return [row[0] for row in db.execute(" ".join(sql), params)]

    def fetch(self, chunk_ids: Iterable[str]) -> dict[str, StoredChunk]:
        """Stored chunks by id (ids not held are absent)."""
        ids = list(dict.fromkeys(chunk_ids))
        out: dict[str, StoredChunk] = {}
        with self._db() as db:
            for part in batches(ids, 500):
                marks = ",".join("?" * len(part))
                for row in db.execute(f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE chunk_id IN ({marks})", list(part)):
                    out[row[0]] = stored_chunk(row)
        return out

    def iter_chunks(self, corpus: str, first_only: bool = False) -> Iterator[StoredChunk]:
        """Stored chunks of a corpus ordered by chunk id (`first_only`: chunk 0 of each document)."""
        where = "corpus = ? AND chunk_no = 0" if first_only else "corpus = ?"
        with self._db() as db:
            rows = db.execute(f"SELECT {CHUNK_COLUMNS} FROM chunks WHERE {where} ORDER BY chunk_id", (corpus,)).fetchall()
        for row in rows:
            yield stored_chunk(row)
