"""Knowledge base: corpus adapters, chunking, incremental chromadb + FTS5 index, hybrid retrieval, evaluation."""

from medtrinity_assets.knowledge.chunking import chunk_document, chunk_documents, load_chunks, word_windows
from medtrinity_assets.knowledge.concepts import normalise_concept_id
from medtrinity_assets.knowledge.config import ChunkingConfig, CorpusConfig, CorpusConfigError, load_corpus_config
from medtrinity_assets.knowledge.corpora import ADAPTERS, iter_documents, load_documents
from medtrinity_assets.knowledge.documents import Chunk, Document
from medtrinity_assets.knowledge.evaluation import evaluate_retrieval
from medtrinity_assets.knowledge.index import build_index
from medtrinity_assets.knowledge.retrieval import (
    fts_match_expression,
    knowledge_query,
    reciprocal_rank_fusion,
    retrieve,
    retrieve_many,
    retriever_id,
)

__all__ = [
    "ADAPTERS",
    "Chunk",
    "ChunkingConfig",
    "CorpusConfig",
    "CorpusConfigError",
    "Document",
    "build_index",
    "chunk_document",
    "chunk_documents",
    "evaluate_retrieval",
    "fts_match_expression",
    "iter_documents",
    "knowledge_query",
    "load_chunks",
    "load_corpus_config",
    "load_documents",
    "normalise_concept_id",
    "reciprocal_rank_fusion",
    "retrieve",
    "retrieve_many",
    "retriever_id",
    "word_windows",
]
