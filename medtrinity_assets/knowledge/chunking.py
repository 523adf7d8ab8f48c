"""Word-window chunking with stable ids and content hashes."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable

from medtrinity_assets.knowledge.config import ChunkingConfig, CorpusConfig
from medtrinity_assets.knowledge.corpora import iter_documents
from medtrinity_assets.knowledge.documents import Chunk, Document, MetadataValue, embedding_text


def word_windows(n_words: int, max_words: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) word ranges covering `n_words`; consecutive windows share `overlap` words.

    The last window is not emitted when the previous one already reaches the end.
    """
    if max_words <= 0 or not 0 <= overlap < max_words:
        raise ValueError(f"need max_words > overlap >= 0, got max_words={max_words}, overlap={overlap}")
    if n_words <= 0:
        return []
    step = max_words - overlap
    windows = []
    start = 0
    while True:
        end = min(start + max_words, n_words)
        windows.append((start, end))
        if end >= n_words:
            return windows
        start += step


def chunk_id(corpus: str, doc_id: str, chunk_no: int) -> str:
    return f"{corpus}:{doc_id}:{chunk_no}"


def content_hash(title: str, text: str, concept_ids: Iterable[str], metadata: dict[str, MetadataValue]) -> str:
    """sha256 (16 hex) over what is embedded and stored: changes iff the chunk must be re-indexed."""
    payload = json.dumps(
        [embedding_text(title, text), list(concept_ids), sorted(metadata.items())], ensure_ascii=False, default=str
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def chunk_document(doc: Document, corpus: str, chunking: ChunkingConfig) -> list[Chunk]:
    """Split one document into word windows; each chunk keeps the document's title, concepts and metadata."""
    words = doc.text.split()
    chunks = []
    for chunk_no, (start, end) in enumerate(word_windows(len(words), chunking.max_words, chunking.overlap)):
        text = " ".join(words[start:end])
        metadata = {**doc.metadata, "word_start": start}
        chunks.append(
            Chunk(
                chunk_id=chunk_id(corpus, doc.doc_id, chunk_no),
                corpus=corpus,
                doc_id=doc.doc_id,
                chunk_no=chunk_no,
                title=doc.title,
                text=text,
                content_hash=content_hash(doc.title, text, doc.concept_ids, metadata),
                concept_ids=doc.concept_ids,
                metadata=metadata,
            )
        )
    return chunks


def chunk_documents(docs: Iterable[Document], corpus: str, chunking: ChunkingConfig) -> list[Chunk]:
    return [chunk for doc in docs for chunk in chunk_document(doc, corpus, chunking)]


def load_chunks(corpus: CorpusConfig, skipped: Counter[str] | None = None) -> list[Chunk]:
    """Read a corpus through its adapter and chunk it with its configured settings (skips counted in `skipped`)."""
    return chunk_documents(iter_documents(corpus, skipped), corpus.name, corpus.chunking)
