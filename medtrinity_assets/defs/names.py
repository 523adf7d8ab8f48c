"""The asset names the jobs, the CLI, backfills and tests refer to (listed once, in graph order)."""

SOURCE_FILES = "source_files"  # external: the files of one source shard, observed (never materialised)

# One run per (source, shard) materialises these, in this order.
DATASET_ASSETS = ("source_manifest", "images", "roi_masks", "coarse_captions", "retrieved_knowledge", "caption_batches", "triplets")

KNOWLEDGE_ASSETS = ("knowledge_index", "retrieval_evaluation")

# Unpartitioned reports over every dataset partition.
REPORT_ASSETS = ("image_duplicates", "source_rejects")

RELEASE_ASSETS = ("dataset_release", "vqa_pairs")

# The paper's stage 1 (unpartitioned, over every built partition): not part of `medtrinity demo`.
SEED_ASSETS = ("seed_subset", "seed_captions", "seed_finetune_set")
