"""dlt sources. `pipelines.bitrix24`: the Bitrix24 REST source (plain dlt, runs without Dagster)."""
