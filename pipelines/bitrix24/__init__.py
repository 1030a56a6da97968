"""The Bitrix24 dlt source: REST client, batched keyset paging, the entity catalogue, the source
(`pipelines.bitrix24.source.bitrix24_source`).

Nothing is imported here: the entity catalogue and the settings are read without dlt (Dagster's code location
loads them in every process it starts), and dlt is loaded only where a load runs."""
