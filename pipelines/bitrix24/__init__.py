"""The Bitrix24 dlt source: REST client, batched keyset paging, the entity catalogue, the source."""

from pipelines.bitrix24.source import bitrix24_source

__all__ = ["bitrix24_source"]
