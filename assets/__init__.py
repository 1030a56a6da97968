"""Dagster assets: thin glue over `pipelines` (extraction) and `warehouse` (the model)."""
