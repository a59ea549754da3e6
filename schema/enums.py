"""GraphQL enums: the data layer's enums, exposed as they are (same names, same members)."""

from __future__ import annotations

import strawberry

from app.db.models import OrderStatus, Region

strawberry.enum(Region)
strawberry.enum(OrderStatus)

__all__ = ["OrderStatus", "Region"]
