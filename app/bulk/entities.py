"""The entities bulk operations write, described once: public field names, columns, value rules.

Validation, writes, and the JSON shapes of every transport are driven by these descriptions, so a
rule ("a bakery's name is non-empty, at most 200 characters") lives in exactly one place.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Enum as SAEnum
from sqlalchemy import Table

from app.db.models import INT_MAX, OrderStatus, Region, UTCDateTime
from app.db.reads import bakeries, orders


class Kind(enum.Enum):
    TEXT = "text"
    INT = "int"
    CHOICE = "choice"
    REFERENCE = "reference"


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    column: str
    kind: Kind
    # Must be given when a row is created.
    required: bool = False
    # May be set to null (only optional columns).
    nullable: bool = False
    max_length: int | None = None
    minimum: int | None = None
    choices: type[enum.Enum] | None = None
    # For references: the table whose id the value names, and what to call it in messages.
    references: Table | None = None
    reference_label: str = ""
    # Written on create when the field is left out.
    default: Any = None


class InvalidValue(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Entity:
    name: str
    label: str
    table: Table
    fields: tuple[Field, ...]
    # The field holding the client's own unique key, which UPSERT matches on.
    key_field: str = "externalId"

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def key_column(self) -> str:
        key = self.field(self.key_field)
        assert key is not None
        return key.column

    @property
    def field_names(self) -> str:
        return ", ".join(f.name for f in self.fields)

    def references(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.kind is Kind.REFERENCE)

    def row_data(self, row: Any) -> dict[str, Any]:
        """A row (Core row or mapping) as a plain dict of column name -> Python value."""
        mapping: Mapping[str, Any] = row._mapping if hasattr(row, "_mapping") else row
        return {column.name: mapping[column.name] for column in self.table.c}

    def encode_row(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """JSON-safe form of `row_data` (enums by name, datetimes in ISO 8601)."""
        return {name: _encode(value) for name, value in data.items()}

    def decode_row(self, encoded: Mapping[str, Any]) -> dict[str, Any]:
        decoded: dict[str, Any] = {}
        for column in self.table.c:
            value = encoded[column.name]
            if value is not None and isinstance(column.type, SAEnum):
                value = column.type.enum_class[value]  # type: ignore[index]
            elif value is not None and isinstance(column.type, UTCDateTime):
                value = datetime.fromisoformat(value)
            decoded[column.name] = value
        return decoded


def _encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def convert(field: Field, value: Any) -> Any:
    """The column value for a client's `value`, or InvalidValue saying what is wrong with it."""
    if value is None:
        if field.nullable:
            return None
        raise InvalidValue("REQUIRED", f"{field.name} cannot be null")
    if field.kind is Kind.TEXT:
        return _text(field, value)
    if field.kind is Kind.INT:
        return _int(field, value)
    if field.kind is Kind.CHOICE:
        return _choice(field, value)
    return _reference(field, value)


def _text(field: Field, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidValue("INVALID_VALUE", f"{field.name} must be a string")
    if not value.strip():
        raise InvalidValue("INVALID_VALUE", f"{field.name} must not be empty")
    # Neither can be stored in PostgreSQL text; refused here, they are an error a client can fix.
    if "\x00" in value or not _encodes(value):
        raise InvalidValue(
            "INVALID_VALUE", f"{field.name} must be valid UTF-8 text without NUL characters"
        )
    if field.max_length is not None and len(value) > field.max_length:
        raise InvalidValue(
            "INVALID_VALUE", f"{field.name} must be at most {field.max_length} characters"
        )
    return value


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _int(field: Field, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue("INVALID_VALUE", f"{field.name} must be a whole number")
    minimum = field.minimum if field.minimum is not None else -INT_MAX - 1
    if not minimum <= value <= INT_MAX:
        raise InvalidValue(
            "INVALID_VALUE", f"{field.name} must be between {minimum} and {INT_MAX}, got {value}"
        )
    return value


def _choice(field: Field, value: Any) -> enum.Enum:
    assert field.choices is not None
    if isinstance(value, field.choices):
        return value
    if isinstance(value, str) and value in field.choices.__members__:
        return field.choices[value]
    names = ", ".join(field.choices.__members__)
    raise InvalidValue("INVALID_VALUE", f"{field.name} must be one of {names}, got {value!r}")


def parse_id(value: Any) -> int | None:
    """A row id from what a client sent (an ID string or a number); None when it names nothing."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= INT_MAX else None
    if isinstance(value, str):
        pk = ascii_int(value)
        return pk if pk is not None and 0 < pk <= INT_MAX else None
    return None


# More digits than any key has (INT_MAX has 10): never handed to `int`, which refuses strings
# past 4,300 digits with a ValueError.
MAX_DIGITS = 20


def ascii_int(text: str) -> int | None:
    """The number `text` spells in ASCII digits alone (an optional leading `-`), else None.
    `int` also takes spaces, `+`, `_` and other scripts' digits: none of them is an id."""
    digits = text[1:] if text.startswith("-") else text
    if not digits.isascii() or not digits.isdigit() or len(digits.lstrip("0")) > MAX_DIGITS:
        return None
    return int(text)


def _reference(field: Field, value: Any) -> int:
    pk = parse_id(value)
    if pk is None:
        raise InvalidValue("REFERENCE_NOT_FOUND", f"no {field.reference_label} has id {value!r}")
    return pk


BAKERIES = Entity(
    name="bakeries",
    label="bakery",
    table=bakeries,
    fields=(
        Field("name", "name", Kind.TEXT, required=True, max_length=200),
        Field("region", "region", Kind.CHOICE, required=True, choices=Region),
        Field("externalId", "external_id", Kind.TEXT, nullable=True, max_length=100),
    ),
)

CAKE_ORDERS = Entity(
    name="cake-orders",
    label="cake order",
    table=orders,
    fields=(
        Field(
            "bakeryId",
            "bakery_id",
            Kind.REFERENCE,
            required=True,
            references=bakeries,
            reference_label="bakery",
        ),
        Field("writtenPhrase", "written_phrase", Kind.TEXT, required=True, max_length=500),
        Field("currentTotal", "current_total", Kind.INT, minimum=0, default=0),
        Field("status", "status", Kind.CHOICE, choices=OrderStatus, default=OrderStatus.PLACED),
        Field("externalId", "external_id", Kind.TEXT, nullable=True, max_length=100),
    ),
)

ENTITIES: dict[str, Entity] = {entity.name: entity for entity in (BAKERIES, CAKE_ORDERS)}
