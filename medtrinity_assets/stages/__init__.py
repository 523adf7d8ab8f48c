"""Shard-level work of each pipeline stage: plain functions over manifests, called by the assets
(medtrinity_assets/defs) and directly by tests and the CLI."""
