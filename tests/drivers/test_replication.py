"""WAL positions as the read-your-writes token carries them, and the primary's commit position."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from drivers.replication import _wal_end, commit_position, format_lsn, parse_lsn


@pytest.mark.parametrize(
    ("text", "position"),
    [("0/0", 0), ("0/16B3748", 0x16B3748), ("16/B374D848", (0x16 << 32) | 0xB374D848)],
)
def test_a_wal_position_reads_and_writes_as_postgresql_spells_it(text: str, position: int) -> None:
    assert parse_lsn(text) == position
    assert format_lsn(position) == text


@pytest.mark.parametrize("text", ["", "16B3748", "x/1", "1/", "/1", "123456789/0", "1/2/3"])
def test_anything_else_is_not_a_wal_position(text: str) -> None:
    with pytest.raises(ValueError, match="not a WAL position"):
        parse_lsn(text)


def test_a_position_just_past_a_page_header_means_the_page_boundary() -> None:
    # a standby that replayed the record ending at the boundary reports the boundary itself
    assert _wal_end(0x3012000 + 24, 8192) == 0x3012000
    assert _wal_end(0x3000000 + 40, 8192) == 0x3000000  # a segment's first page: long header
    assert _wal_end(0x3012000 + 48, 8192) == 0x3012000 + 48
    assert _wal_end(0x3012000, 8192) == 0x3012000


async def test_the_commit_position_covers_a_commit_just_made(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TEMP TABLE t_lsn (a int) ON COMMIT DROP"))
        await conn.execute(text("INSERT INTO t_lsn VALUES (1)"))
    async with engine.connect() as conn:
        flushed = (await conn.execute(text("SELECT pg_current_wal_flush_lsn()::text"))).scalar()
    assert await commit_position(engine) >= parse_lsn(str(flushed))
