"""knowledge_index (per corpus), retrieval_evaluation, retrieved_knowledge (per dataset x shard)."""


import hashlib
import time
from collections import Counter

import polars as pl
from dagster import (
    AllPartitionMapping,
    AssetCheckResult,
    AssetDep,
    AssetExecutionContext,
    DataVersion,
    MetadataValue,
    Output,
    asset,
)

from medtrinity_assets.defs.context import CORPUS_PARTITIONS, KNOWLEDGE_POOL, catalog, corpora
from medtrinity_assets.defs.declare import manifest_asset, shard_asset
from medtrinity_assets.defs.metadata import table_md, throughput
from medtrinity_assets.defs.progress import ProgressLog
from medtrinity_assets.knowledge import build_index, load_chunks
from medtrinity_assets.knowledge.evaluation import evaluate_policy
from medtrinity_assets.knowledge.corpus_io import SKIP_REASONS
from medtrinity_assets.schema import KNOWLEDGE_INDEX_SCHEMA, conform
from medtrinity_assets.knowledge.vocabulary import load_vocabulary
from medtrinity_assets.stages.knowledge import misfit_passages, retrieve_for_shard, unmapped_labels
from medtrinity_resources.embedder import SentenceEmbedder
from medtrinity_resources.knowledge_store import KnowledgeStore

P_AT_1_THRESHOLD = 0.9
EVALUATION_FIGURES = (
    "finding_precision_at_1",
    "finding_precision_at_5",
    "anatomy_disease_passage_share",
    "anatomy_precision_at_1",
    "queries_with_wrong_disease",
    "mapping_accuracy",
    "n_queries",
    "queries_not_indexed",
)


@asset(
    partitions_def=CORPUS_PARTITIONS,
    io_manager_key="manifest_io",
    group_name="knowledge",
    kinds={"chromadb", "sqlite"},
    pool=KNOWLEDGE_POOL,
    description=(
        "One knowledge corpus chunked and embedded into the knowledge store (incremental: unchanged chunks are not "
        "re-embedded). Its data version is a digest of the indexed chunks and the embedder, so an unchanged index "
        "leaves retrieval fresh."
    ),
)
def knowledge_index(context: AssetExecutionContext, embedder: SentenceEmbedder, knowledge_store: KnowledgeStore) -> Output:
    corpus = corpora()[context.partition_key]
    t0 = time.perf_counter()
    skipped: Counter[str] = Counter()
    chunks = load_chunks(corpus, skipped)
    stats = build_index(knowledge_store, embedder, corpus.name, chunks, progress=ProgressLog(context.log, f"knowledge_index[{corpus.name}]"))
    rows = [
        {
            "corpus": corpus.name,
            "chunk_id": c.chunk_id,
            "doc_id": c.doc_id,
            "title": c.title,
            "content_hash": c.content_hash,
            "embedder": embedder.model_id,
        }
        for c in chunks
    ]
    df = conform(rows, KNOWLEDGE_INDEX_SCHEMA)
    digest = hashlib.sha256(embedder.model_id.encode())
    for c in chunks:
        digest.update(f"{c.chunk_id}:{c.content_hash}\n".encode())
    return Output(
        df,
        data_version=DataVersion(digest.hexdigest()[:16]),
        metadata={
            "chunks": MetadataValue.int(stats["n_chunks"]),
            "embedded": MetadataValue.int(stats["n_embedded"]),
            "deleted": MetadataValue.int(stats["n_deleted"]),
            "embedder": MetadataValue.text(embedder.model_id),
            "licence": MetadataValue.text(corpus.licence),
            "skipped": MetadataValue.json({reason: skipped.get(reason, 0) for reason in SKIP_REASONS}),
            **throughput(stats["n_embedded"], time.perf_counter() - t0, "chunks"),
        },
    )


@manifest_asset(
    {
        "finding_precision_at_1": (
            f"On the labelled ROI queries (data/knowledge/evaluation), the first passage of at least "
            f"{P_AT_1_THRESHOLD:.0%} of finding queries is about the recorded finding."
        ),
        "no_disease_for_normal_anatomy": "No normal-anatomy query gets a disease passage, and no query gets a passage about a disease other than its own.",
    },
    deps=[AssetDep(knowledge_index, partition_mapping=AllPartitionMapping())],
    group_name="knowledge",
    kinds={"chromadb"},
    description=(
        "Labelled retrieval evaluation (data/knowledge/evaluation/queries.jsonl, ROI-style queries: findings, "
        "abbreviations, near-miss names, normal anatomy): precision@1/@5 for findings, the share of anatomy queries "
        "given a disease passage, wrong-disease passages; the same for the retrieval before the concept policy."
    ),
)
def retrieval_evaluation(embedder: SentenceEmbedder, knowledge_store: KnowledgeStore):
    anatomy = tuple(name for name, c in corpora().items() if c.adapter == "uberon")
    result = evaluate_policy(knowledge_store, embedder, load_vocabulary(), anatomy_corpora=anatomy)
    failures = pl.DataFrame(
        [{"id": f["id"], "category": f["category"], "got": str(f["got"]), "wrong": ", ".join(f["wrong"])} for f in result["failures"]],
        schema={k: pl.Utf8 for k in ("id", "category", "got", "wrong")},
    )
    figures = {k: result[k] for k in EVALUATION_FIGURES}
    yield Output(
        failures,
        metadata={
            **{k: MetadataValue.float(float(v)) if isinstance(v, float) else MetadataValue.int(int(v)) for k, v in figures.items()},
            "baseline_before_policy": MetadataValue.json(result["baseline"]),
            "failures": table_md(failures),
        },
    )
    yield AssetCheckResult(
        check_name="finding_precision_at_1",
        passed=bool(result["n_finding_queries"] > 0 and result["finding_precision_at_1"] >= P_AT_1_THRESHOLD),
        metadata={
            "finding_precision_at_1": float(result["finding_precision_at_1"]),
            "finding_precision_at_5": float(result["finding_precision_at_5"]),
            "threshold": P_AT_1_THRESHOLD,
            "queries": int(result["n_finding_queries"]),
            "baseline_precision_at_1": float(result["baseline"]["finding_precision_at_1"]),
        },
    )
    yield AssetCheckResult(
        check_name="no_disease_for_normal_anatomy",
        passed=bool(result["anatomy_disease_passage_share"] == 0 and result["queries_with_wrong_disease"] == 0),
        metadata={
            "anatomy_disease_passage_share": float(result["anatomy_disease_passage_share"]),
            "queries_with_wrong_disease": int(result["queries_with_wrong_disease"]),
            "anatomy_queries": int(result["n_anatomy_queries"]),
            "baseline_anatomy_disease_passage_share": float(result["baseline"]["anatomy_disease_passage_share"]),
        },
    )


@shard_asset(
    {
        "passages_fit_their_roi": (
            "Every passage is about the ROI's own concept or a finding recorded for its image (no disease passage for "
            "normal anatomy, none about another disease); counts of unmapped labels and of mapped ROIs without knowledge."
        ),
    },
    kinds={"chromadb", "polars"},
    deps=[AssetDep(knowledge_index, partition_mapping=AllPartitionMapping())],
    description=(
        "Every ROI label and image finding mapped to a concept (Disease Ontology / Uberon id, matched synonym, match "
        "type), and the passages the use policy allows: disease passages only for recorded findings, anatomy passages "
        "for structures, selected by concept id, trimmed to whole sentences about the concept."
    ),
)
def retrieved_knowledge(
    context: AssetExecutionContext, coarse_captions: pl.DataFrame, embedder: SentenceEmbedder, knowledge_store: KnowledgeStore
):
    t0 = time.perf_counter()
    anatomy = tuple(name for name, c in corpora().items() if c.adapter == "uberon")
    concepts = {s.name: dict(s.concepts) for s in catalog().sources}
    df = retrieve_for_shard(coarse_captions, knowledge_store, embedder, load_vocabulary(), concepts, top_k=5, anatomy_corpora=anatomy)
    mapped = df.filter(pl.col("roi_concept").struct.field("concept_id") != "")
    empty = mapped.filter(pl.col("passage_ids").list.len() == 0)
    unmapped = unmapped_labels(df)
    sample = df.head(1)
    yield Output(
        df,
        metadata={
            "rows": MetadataValue.int(df.height),
            "unique_queries": MetadataValue.int(df["knowledge_query"].n_unique() if df.height else 0),
            "rois_with_concept": MetadataValue.int(mapped.height),
            "rois_with_passages": MetadataValue.int(df.filter(pl.col("passage_ids").list.len() > 0).height),
            "unmapped_labels": MetadataValue.json(unmapped),
            "sample": MetadataValue.json(
                {"query": sample["knowledge_query"][0], "passages": sample["passage_ids"][0].to_list(), "titles": sample["passage_titles"][0].to_list()}
                if df.height
                else {}
            ),
            **throughput(df.height, time.perf_counter() - t0, "rows"),
        },
    )
    misfits = misfit_passages(df, load_vocabulary())
    yield AssetCheckResult(
        check_name="passages_fit_their_roi",
        passed=not misfits,
        metadata={
            "misfit_passages": len(misfits),
            "examples": misfits[:5],
            "mapped_without_passages": empty.height,
            "mapped": mapped.height,
            "unmapped_labels": unmapped,
        },
    )
