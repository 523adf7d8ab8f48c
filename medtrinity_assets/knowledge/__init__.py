"""Knowledge base: corpus adapters, chunking, incremental chromadb + FTS5 index, hybrid retrieval, concepts and
their use policy, evaluation."""

from medtrinity_assets.knowledge.chunking import chunk_document, chunk_documents, load_chunks, word_windows
from medtrinity_assets.knowledge.concepts import normalise_concept_id
from medtrinity_assets.knowledge.config import ChunkingConfig, CorpusConfig, CorpusConfigError, load_corpus_config
from medtrinity_assets.knowledge.corpora import ADAPTERS, iter_documents, load_documents
from medtrinity_assets.knowledge.documents import Chunk, Document
from medtrinity_assets.knowledge.evaluation import evaluate_policy, evaluate_retrieval, load_queries
from medtrinity_assets.knowledge.index import build_index
from medtrinity_assets.knowledge.policy import KnowledgeRequest, select_many, select_passages
from medtrinity_assets.knowledge.retrieval import (
    fts_match_expression,
    knowledge_query,
    reciprocal_rank_fusion,
    retrieve,
    retrieve_many,
    retriever_id,
)
from medtrinity_assets.knowledge.vocabulary import ConceptVocabulary, build_vocabulary, load_vocabulary

__all__ = [
    "ADAPTERS",
    "Chunk",
    "ConceptVocabulary",
    "KnowledgeRequest",
    "ChunkingConfig",
    "CorpusConfig",
    "CorpusConfigError",
    "Document",
    "build_index",
    "build_vocabulary",
    "evaluate_policy",
    "chunk_document",
    "chunk_documents",
    "evaluate_retrieval",
    "fts_match_expression",
    "iter_documents",
    "knowledge_query",
    "load_chunks",
    "load_corpus_config",
    "load_documents",
    "load_queries",
    "load_vocabulary",
    "normalise_concept_id",
    "reciprocal_rank_fusion",
    "retrieve",
    "retrieve_many",
    "retriever_id",
    "select_many",
    "select_passages",
    "word_windows",
]
