"""Records mirror the tables: every declared field is its column, with the column's type.

drivers/records.py keeps typed records for the code that reads them; the mapping appends any
column a record does not declare at run time (drivers/mapping.py Entity), so this test is what
holds the declared part equal to drivers/tables.py.
"""

from __future__ import annotations

import dataclasses
import types
from datetime import datetime
from decimal import Decimal
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from drivers.mapping import ENTITIES, Entity

# NOT NULL columns a record declares optional, and why.
OPTIONAL = {
    # A breaker that was never written is a record without a row (DOMAIN.md §3.7).
    ("CircuitBreaker", "id"),
    ("CircuitBreaker", "created_at"),
    ("CircuitBreaker", "updated_at"),
}


def _python(column: sa.Column[Any]) -> Any:
    if isinstance(column.type, JSONB):
        return Any
    if isinstance(column.type, sa.DateTime):
        return datetime
    if isinstance(column.type, sa.Numeric) and not isinstance(column.type, sa.Float):
        return Decimal
    return column.type.python_type


def _split(hint: Any) -> tuple[Any, bool]:
    """(type, optional) of an annotation such as `str | None`."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(get_args(hint))
    return hint, False


@pytest.mark.parametrize("entity", ENTITIES.values(), ids=lambda e: e.name)
def test_declared_record_fields_equal_their_columns(entity: Entity[Any]) -> None:
    hints = get_type_hints(entity.record)
    checked = 0
    for field in dataclasses.fields(entity.record):
        if field.name in entity.derived:
            continue
        column = entity.table.c[field.name]  # KeyError: a field without a column
        python, optional = _split(hints[field.name])
        assert python == _python(column), (entity.name, field.name)
        want = bool(column.nullable) or (entity.name, field.name) in OPTIONAL
        # JSON is Any, and `Any | None` is still Any: its nullability cannot be read back.
        if python is not Any:
            assert optional == want, (entity.name, field.name, column.nullable)
        checked += 1
    assert checked > 0


def test_a_column_the_record_does_not_declare_is_appended() -> None:
    """The run-time part: a new column rides along in the record, typed from the column."""
    table = sa.Table("scratch_records", sa.MetaData(), sa.Column("id", sa.Text, primary_key=True))
    table.append_column(sa.Column("tenant_id", sa.Text, nullable=False))
    table.append_column(sa.Column("reach", sa.Integer, comment="How far."))

    @dataclasses.dataclass(frozen=True, slots=True)
    class Row:
        id: str

    entity = Entity("Scratch", table, Row)
    assert [f.name for f in dataclasses.fields(entity.record)] == ["id", "reach"]
    assert issubclass(entity.record, Row)
    assert [c.name for c in entity.columns] == ["id", "reach"]
    record = entity.record("r1", 3)  # type: ignore[call-arg]
    assert (record.id, record.reach) == ("r1", 3)  # type: ignore[attr-defined]
    reach = entity.attributes[1]
    assert (reach.scalar, reach.nullable, reach.description) == ("Int", True, "How far.")
