"""Dagster wiring: one small module per stage. The work lives in medtrinity_assets.stages."""
