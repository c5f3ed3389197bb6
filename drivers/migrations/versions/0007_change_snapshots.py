"""Each change carries its row (docs/decisions.md § Each change carries its row).

Writers store the changed row as they commit it in change_snapshots (UNLOGGED) under the
change's seq, and change_outbox rows get the writer's xid; subscribers read each change's own
row by its seq.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_XID = sa.text("(pg_current_xact_id())::text::bigint")


def upgrade() -> None:
    op.add_column(
        "change_outbox", sa.Column("xid", sa.BigInteger(), server_default=_XID, nullable=False)
    )
    op.create_table(
        "change_snapshots",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Text(), nullable=False),
        sa.Column("xid", sa.BigInteger(), server_default=_XID, nullable=False),
        sa.Column("snapshot", JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_change_snapshots")),
    )
    # UNLOGGED: no WAL for a row that lives a minute and matters for milliseconds (between the
    # NOTIFY and the hubs' read, on the primary). A crash empties it, and every hub's LISTEN
    # reconnects and resyncs then anyway; a hub that finds no snapshot reads the current row.
    op.execute("ALTER TABLE change_snapshots SET UNLOGGED")
    # Rows live about a minute (the publisher prunes by seq): vacuum by row count.
    op.execute(
        "ALTER TABLE change_snapshots SET (autovacuum_vacuum_scale_factor = 0, "
        "autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_insert_scale_factor = 0)"
    )


def downgrade() -> None:
    op.drop_table("change_snapshots")
    op.drop_column("change_outbox", "xid")
