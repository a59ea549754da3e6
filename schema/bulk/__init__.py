"""Bulk mutations (contract/bulk.md): batchBakeries, batchCakeOrders, deleteManyBakeries,
placeOrders. The work is done by `app.bulk`; this package only speaks GraphQL."""

from schema.bulk.mutation import BulkMutation

__all__ = ["BulkMutation"]
