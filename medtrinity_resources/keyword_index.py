"""The keyword side of the knowledge store: a SQLite database with an FTS5 table (bm25) over chunk
titles and texts, and two lookup tables: concept ids per chunk (filtering) and the names each
document's first chunk answers to (its title and ``synonyms`` metadata; exact name lookup).
Plain functions on a `sqlite3.Connection`; `KnowledgeStore` opens the connections.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from medtrinity_assets.records import KnowledgeChunk

CONCEPT_DELIMITER = "|"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS corpora(
  corpus TEXT PRIMARY KEY, embedder TEXT NOT NULL, dimension INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
  rowid INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, corpus TEXT NOT NULL, doc_id TEXT NOT NULL,
  chunk_no INTEGER NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL, content_hash TEXT NOT NULL,
  concept_ids TEXT NOT NULL, metadata TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_corpus ON chunks(corpus);
CREATE TABLE IF NOT EXISTS chunk_concepts(concept_key TEXT NOT NULL, chunk_rowid INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_concepts_key ON chunk_concepts(concept_key);
CREATE INDEX IF NOT EXISTS chunk_concepts_row ON chunk_concepts(chunk_rowid);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
  title, text, content='chunks', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2');
CREATE TABLE IF NOT EXISTS chunk_names(name_key TEXT NOT NULL, chunk_rowid INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_names_key ON chunk_names(name_key);
CREATE INDEX IF NOT EXISTS chunk_names_row ON chunk_names(chunk_rowid);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
"""
_DELETE_TRIGGER = """
DROP TRIGGER IF EXISTS chunks_ad;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
  DELETE FROM chunk_concepts WHERE chunk_rowid = old.rowid;
  DELETE FROM chunk_names WHERE chunk_rowid = old.rowid;
END;
"""
SCHEMA_VERSION = 2  # 2: chunk_names (exact name lookup)
SYNONYMS_KEY = "synonyms"  # chunk metadata holding '; '-separated alternative names
_NAME_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Hit:
    """One ranked candidate from the dense or the keyword side."""

    chunk_id: str
    corpus: str
    score: float  # dense: cosine similarity; keyword: -bm25 (higher is better for both)


StoredChunk = KnowledgeChunk  # what `fetch` returns; also what `insert_chunks` takes


def name_key(name: str) -> str:
    """Matching key of a concept name: case-folded words ('Coffin-Siris  syndrome' -> 'coffin siris syndrome')."""
    return " ".join(_NAME_WORD.findall(name.casefold()))


def chunk_names(title: str, metadata: dict[str, Any]) -> set[str]:
    """Name keys a document's first chunk answers to: its title and its metadata synonyms."""
    names = [title, *str(metadata.get(SYNONYMS_KEY, "") or "").split(";")]
    return {key for key in (name_key(n) for n in names) if key}


def migrate(conn: sqlite3.Connection) -> None:
    """Create or upgrade the keyword database to SCHEMA_VERSION (backfilling new lookup tables)."""
    conn.executescript(_SCHEMA)
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version >= SCHEMA_VERSION:
        return
    with conn:
        conn.executescript(_DELETE_TRIGGER)
        conn.execute("DELETE FROM chunk_names")
        rows = conn.execute("SELECT rowid, title, metadata FROM chunks WHERE chunk_no = 0").fetchall()
        conn.executemany(
            "INSERT INTO chunk_names(name_key, chunk_rowid) VALUES (?, ?)",
            [(key, rowid) for rowid, title, meta in rows for key in sorted(chunk_names(title, json.loads(meta)))],
        )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def concept_key(concept_id: str) -> str:
    """Case-insensitive key; callers normalise spelling first (see knowledge.concepts)."""
    return " ".join(concept_id.split()).casefold()


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


CHUNK_COLUMNS = "chunk_id, corpus, doc_id, chunk_no, title, text, content_hash, concept_ids, metadata"


def stored_chunk(row: tuple) -> KnowledgeChunk:
    """A `chunks` row selected with CHUNK_COLUMNS."""
    concepts = tuple(c for c in row[7].split(CONCEPT_DELIMITER) if c)
    return KnowledgeChunk(row[0], row[1], row[2], int(row[3]), row[4], row[5], row[6], concepts, json.loads(row[8]))


def add_filters(sql: list[str], params: list[Any], corpora: Iterable[str] | None, concept_ids: Iterable[str] | None) -> bool:
    """Append corpus / concept-id filters on chunks `c`; False when a filter can match nothing."""
    if corpora is not None:
        names = list(corpora)
        if not names:
            return False
        sql.append(f"AND c.corpus IN ({','.join('?' * len(names))})")
        params.extend(names)
    if concept_ids is not None:
        keys = sorted({concept_key(c) for c in concept_ids if c})
        if not keys:
            return False
        sql.append(
            "AND c.rowid IN (SELECT chunk_rowid FROM chunk_concepts"
            f" WHERE concept_key IN ({','.join('?' * len(keys))}))"
        )
        params.extend(keys)
    return True


def insert_chunks(db: sqlite3.Connection, corpus: str, chunks: Sequence[KnowledgeChunk]) -> None:
    """Replace the keyword rows of `chunks` (rows, FTS entries via trigger, concept and name lookups)."""
    delete_chunks(db, [c.chunk_id for c in chunks])
    db.executemany(
        "INSERT INTO chunks(chunk_id, corpus, doc_id, chunk_no, title, text, content_hash, concept_ids, metadata)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                c.chunk_id,
                corpus,
                c.doc_id,
                int(c.chunk_no),
                c.title,
                c.text,
                c.content_hash,
                CONCEPT_DELIMITER.join(c.concept_ids),
                json.dumps(c.metadata, ensure_ascii=False, sort_keys=True),
            )
            for c in chunks
        ],
    )
    rowids: dict[str, int] = {}
    for part in batches([c.chunk_id for c in chunks], 500):
        marks = ",".join("?" * len(part))
        rowids.update(db.execute(f"SELECT chunk_id, rowid FROM chunks WHERE chunk_id IN ({marks})", list(part)))
    db.executemany(
        "INSERT INTO chunk_concepts(concept_key, chunk_rowid) VALUES (?, ?)",
        [(k, rowids[c.chunk_id]) for c in chunks for k in sorted({concept_key(cid) for cid in c.concept_ids if cid})],
    )
    db.executemany(
        "INSERT INTO chunk_names(name_key, chunk_rowid) VALUES (?, ?)",
        [(k, rowids[c.chunk_id]) for c in chunks if int(c.chunk_no) == 0 for k in sorted(chunk_names(c.title, c.metadata))],
    )


def delete_chunks(db: sqlite3.Connection, chunk_ids: Sequence[str]) -> None:
    for part in batches(list(chunk_ids), 500):
        marks = ",".join("?" * len(part))
        db.execute(f"DELETE FROM chunks WHERE chunk_id IN ({marks})", list(part))
