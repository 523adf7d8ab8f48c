"""Knowledge base bench: index throughput vs the bare embedder, query latency, recall@5.

  python bench/knowledge_bench.py                       # full bundled corpora (long on CPU)
  python bench/knowledge_bench.py --max-documents 300   # quick run
  python bench/knowledge_bench.py --dtype bfloat16      # ~4x faster embedding on AVX512-BF16/AMX CPUs
  python bench/knowledge_bench.py --backend sentence_transformers   # all-MiniLM-L6-v2 itself

(0) backends: the static table (default) against all-MiniLM-L6-v2 (sentence_transformers) on the
    same chunks (the Disease Ontology terms of the labelled queries, all anatomy, some MedQuAD):
    embedder load time (first embed in this process, imports included), build_index time, the
    labelled evaluation (concept policy) and dense + bm25 recall@5 on that index; ratios static / MiniLM.

(a) throughput: the same sample of chunks embedded by `embedder.embed` alone and indexed by
    `build_index` into an empty store, alternating, best of N rounds each; ratio = build chunks/s /
    bare chunks/s (goal >= 0.8).
(b) latency: p50/p95 of `retrieve` (top 5, all corpora) over the full index, with its chunk count,
    next to p50/p95 of embedding the query alone, and per-query time of one `retrieve_many` batch.
(c) recall@5 of `evaluate_retrieval` (Disease Ontology names, and first synonyms), with all signals
    and with dense + bm25 alone (no exact-name lookup).
(d) the labelled ROI-query evaluation (data/knowledge/evaluation) on the full index: finding
    precision@1/@5, disease passages on normal-anatomy queries, wrong-disease passages, for the
    concept policy and for the retrieval before it.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time

import _common  # noqa: E402

_common.setup(offline=True)

from medtrinity_assets.knowledge import (  # noqa: E402
    build_index,
    evaluate_policy,
    evaluate_retrieval,
    knowledge_query,
    load_chunks,
    load_corpus_config,
    load_queries,
    load_vocabulary,
    retrieve,
    retrieve_many,
)
from medtrinity_assets.knowledge.index import EMBED_BATCH  # noqa: E402
from medtrinity_resources.embedder import SentenceEmbedder  # noqa: E402
from medtrinity_resources.knowledge_store import KnowledgeStore  # noqa: E402

EVAL_KEYS = (
    "finding_precision_at_1",
    "finding_precision_at_5",
    "anatomy_disease_passage_share",
    "anatomy_precision_at_1",
    "queries_with_wrong_disease",
)
RECORD_QUERIES = [
    knowledge_query("MRI", ["brain"], ["glioma"], "enhancing tumor"),
    knowledge_query("CT", ["liver"], [], "liver tumor"),
    knowledge_query("X-ray", ["chest"], ["pneumonia", "effusion"], None),
    knowledge_query("CT", ["lung"], ["nodule"], "lung nodule"),
    knowledge_query("microscopy", ["cell nucleus"], [], "nucleus"),
    knowledge_query("ultrasound", ["breast"], ["malignant"], "breast lesion"),
    knowledge_query("MRI", ["prostate"], [], "peripheral zone"),
    knowledge_query("CT", ["kidney"], ["kidney cyst"], "kidney"),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def bench_throughput(embedder: SentenceEmbedder, chunks: list, n: int, rounds: int) -> dict:
    """Bare embed vs build_index (into a new, empty store) on the same `n` chunks.

    Rounds alternate bare / build and the fastest round of each counts (min-of-N: the machine is
    shared, so the slow rounds measure other processes, not the code).
    """
    sample = random.Random(0).sample(chunks, min(n, len(chunks)))
    texts = [c.embedding_text for c in sample]
    by_corpus: dict[str, list] = {}
    for c in sample:
        by_corpus.setdefault(c.corpus, []).append(c)
    embedder.embed(texts[:32])  # warm-up (model load, first-call allocations)
    bare_times, build_times = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for i in range(0, len(texts), EMBED_BATCH):
            embedder.embed(texts[i : i + EMBED_BATCH])
        bare_times.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            store = KnowledgeStore(persist_dir=tmp)
            t0 = time.perf_counter()
            for corpus, part in by_corpus.items():
                build_index(store, embedder, corpus, part)
            build_times.append(time.perf_counter() - t0)
    bare_rate, build_rate = len(sample) / min(bare_times), len(sample) / min(build_times)
    return {
        "n_chunks": len(sample),
        "rounds": rounds,
        "bare_embed_chunks_per_s": round(bare_rate, 2),
        "build_index_chunks_per_s": round(build_rate, 2),
        "ratio": round(build_rate / bare_rate, 3),
        "bare_seconds": [round(t, 2) for t in bare_times],
        "build_seconds": [round(t, 2) for t in build_times],
    }


def policy_subset(configs: dict, n_medquad: int) -> dict[str, list]:
    """Chunks of the Disease Ontology terms the labelled queries name, all anatomy, `n_medquad` MedQuAD documents."""
    wanted = {c for q in load_queries() for c in [*q["expected"], *q.get("forbidden", [])]}
    out = {"disease_ontology": [c for c in load_chunks(configs["disease_ontology"]) if c.doc_id in wanted]}
    for name, cfg in configs.items():
        if cfg.adapter == "uberon":
            out[name] = load_chunks(cfg)
    if "medquad" in configs and n_medquad:
        out["medquad"] = load_chunks(configs["medquad"].model_copy(update={"max_documents": n_medquad}))
    return out


def bench_backends(configs: dict, n_medquad: int, dtype: str, device: str) -> dict:
    """Per embedder backend, on the same chunks: load time (first embed in this process, imports
    included), build_index rate into an empty store, and retrieval quality on that index (labelled
    evaluation with the concept policy; dense + bm25 recall@5 of a disease name's own definition)."""
    chunks = policy_subset(configs, n_medquad)
    anatomy = tuple(n for n, c in configs.items() if c.adapter == "uberon")
    vocab = load_vocabulary()
    out: dict = {"n_chunks": sum(map(len, chunks.values()))}
    for backend in ("static", "sentence_transformers"):
        embedder = SentenceEmbedder(backend=backend, dtype=dtype, device=device)
        t0 = time.perf_counter()
        embedder.embed(["warm-up"])
        load_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            store = KnowledgeStore(persist_dir=tmp)
            t0 = time.perf_counter()
            for corpus, part in chunks.items():
                build_index(store, embedder, corpus, part)
            build_s = time.perf_counter() - t0
            quality = evaluate_policy(store, embedder, vocab, anatomy_corpora=anatomy, baseline=False)
            recall = evaluate_retrieval(store, embedder, n=100, seed=0, top_k=5, name_match=False)
        out[backend] = {
            "model_id": embedder.model_id,
            "load_s": round(load_s, 3),
            "build_s": round(build_s, 2),
            "build_chunks_per_s": round(out["n_chunks"] / build_s, 1),
            **{k: quality[k] for k in EVAL_KEYS},
            "dense_bm25_recall_at_5": recall["recall_at_k"],
        }
        print(f"    {backend}", json.dumps(out[backend]), flush=True)
    st, mini = out["static"], out["sentence_transformers"]
    out["load_ratio_static_vs_minilm"] = round(st["load_s"] / mini["load_s"], 4)
    out["build_speedup_static_vs_minilm"] = round(st["build_chunks_per_s"] / mini["build_chunks_per_s"], 2)
    return out


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--corpora-yaml", default=None, help="default: data/knowledge/corpora.yaml")
    parser.add_argument("--max-documents", type=int, default=None, help="per corpus (default: all)")
    parser.add_argument("--persist-dir", default=None, help="index location (default: a temporary dir)")
    parser.add_argument("--backend", default="static", choices=["static", "sentence_transformers"])
    parser.add_argument("--compare-medquad", type=int, default=150, help="(0) MedQuAD documents in the backend index")
    parser.add_argument("--skip-compare", action="store_true", help="skip (0), the MiniLM comparison (minutes on CPU)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--throughput-chunks", type=int, default=512)
    parser.add_argument("--throughput-rounds", type=int, default=3)
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--eval-n", type=int, default=200)
    args = parser.parse_args()

    configs = load_corpus_config(args.corpora_yaml)
    if args.max_documents:
        configs = {k: v.model_copy(update={"max_documents": args.max_documents}) for k, v in configs.items()}
    summary: dict = {}
    if not args.skip_compare:
        summary["backends"] = bench_backends(configs, args.compare_medquad, args.dtype, args.device)
        print("(0) backends", json.dumps(summary["backends"]), flush=True)
    embedder = SentenceEmbedder(
        backend=args.backend, device=args.device, dtype=args.dtype, num_threads=args.num_threads
    )
    t0 = time.perf_counter()
    embedder.embed(["warm-up"])  # loads the model and applies num_threads
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    chunks = {name: load_chunks(cfg) for name, cfg in configs.items()}
    chunk_s = time.perf_counter() - t0
    threads = f"; torch threads {torch_threads()}" if args.backend == "sentence_transformers" else ""
    print(f"embedder {embedder.model_id} dim {embedder.dimension}{threads}")
    print(
        f"embedder loaded in {load_s:.2f}s; read and chunked {sum(map(len, chunks.values()))} chunks in {chunk_s:.1f}s: "
        + ", ".join(f"{k}={len(v)}" for k, v in chunks.items()),
        flush=True,
    )

    summary["embedder"] = embedder.model_id
    summary["throughput"] = bench_throughput(
        embedder, [c for v in chunks.values() for c in v], args.throughput_chunks, args.throughput_rounds
    )
    print("(a) throughput", json.dumps(summary["throughput"]), flush=True)

    persist = args.persist_dir or tempfile.mkdtemp(prefix="kb_bench_")
    store = KnowledgeStore(persist_dir=persist)
    builds = []
    for name, corpus_chunks in chunks.items():
        result = build_index(store, embedder, name, corpus_chunks)
        builds.append(result)
        print("    build", json.dumps(result), flush=True)
    rebuild = [build_index(store, embedder, name, c) for name, c in chunks.items()]
    summary["full_build"] = {
        "n_chunks": sum(b["n_chunks"] for b in builds),
        "n_embedded": sum(b["n_embedded"] for b in builds),
        "seconds": round(sum(b["seconds"] for b in builds), 1),
        "read_chunk_seconds": round(chunk_s, 1),
        "knowledge_build_seconds": round(chunk_s + sum(b["seconds"] for b in builds), 1),
        "rebuild_n_embedded": sum(b["n_embedded"] for b in rebuild),
        "rebuild_seconds": round(sum(b["seconds"] for b in rebuild), 2),
    }
    print("    full build", json.dumps(summary["full_build"]), flush=True)

    names = [c.title for c in chunks.get("disease_ontology", []) if c.chunk_no == 0]
    queries = RECORD_QUERIES + random.Random(1).sample(names, min(len(names), max(0, args.latency_queries - 8)))
    retrieve(store, embedder, queries[0])  # warm-up
    latencies = []
    for q in queries:
        t = time.perf_counter()
        retrieve(store, embedder, q, top_k=5)
        latencies.append(time.perf_counter() - t)
    embed_latencies = []
    for q in queries:
        t = time.perf_counter()
        embedder.embed([q])
        embed_latencies.append(time.perf_counter() - t)
    t = time.perf_counter()
    retrieve_many(store, embedder, queries, top_k=5)
    batch_s = time.perf_counter() - t
    summary["latency"] = {
        "index_chunks": store.count(),
        "queries": len(queries),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p95_ms": round(1000 * percentile(latencies, 0.95), 1),
        "query_embed_p50_ms": round(1000 * statistics.median(embed_latencies), 1),
        "query_embed_p95_ms": round(1000 * percentile(embed_latencies, 0.95), 1),
        "retrieve_many_ms_per_query": round(1000 * batch_s / len(queries), 1),
    }
    print("(b) latency", json.dumps(summary["latency"]), flush=True)

    for field in ("name", "synonym"):
        for name_match in (True, False):
            result = evaluate_retrieval(
                store, embedder, n=args.eval_n, seed=0, top_k=5, query_field=field, name_match=name_match
            )
            key = f"recall_{field}" + ("" if name_match else "_dense_bm25_only")
            summary[key] = {k: result[k] for k in ("recall_at_k", "k", "n", "n_chunks")}
            summary[key]["misses"] = result["misses"][:10]
            signals = "dense+bm25+name" if name_match else "dense+bm25 only"
            print(
                f"(c) recall@5 ({field} queries, {signals}) = {result['recall_at_k']} over n={result['n']} "
                f"({len(result['misses'])} misses)",
                flush=True,
            )
            for miss in result["misses"][:5]:
                print("      miss:", miss["query"], "->", miss["got"][:3])
    anatomy = tuple(n for n, c in configs.items() if c.adapter == "uberon")
    labelled = evaluate_policy(store, embedder, load_vocabulary(), anatomy_corpora=anatomy)
    summary["labelled"] = {k: labelled[k] for k in (*EVAL_KEYS, "mapping_accuracy", "n_queries", "n_finding_queries")}
    summary["labelled"]["before_policy"] = {k: labelled["baseline"][k] for k in EVAL_KEYS}
    summary["labelled"]["failures"] = [f["id"] for f in labelled["failures"]]
    print("(d) labelled ROI queries", json.dumps(summary["labelled"]), flush=True)
    print("SUMMARY", json.dumps({k: v for k, v in summary.items()}, default=str))
    print(f"ratio build_index/bare embed = {summary['throughput']['ratio']} (goal >= 0.8)")


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
