"""Change outbox (docs/decisions.md § Change notifications through an outbox).

Mutations write their change notifications here instead of calling pg_notify, so their commits
no longer queue on PostgreSQL's global NOTIFY lock; one publisher sends and deletes them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "change_outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("tenant_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_outbox")),
    )
    # Every row is deleted within milliseconds of its insert: vacuum by row count, not by a
    # fraction of a table that is nearly always empty.
    op.execute(
        "ALTER TABLE change_outbox SET (autovacuum_vacuum_scale_factor = 0, "
        "autovacuum_vacuum_threshold = 5000, autovacuum_vacuum_insert_scale_factor = 0)"
    )


def downgrade() -> None:
    op.drop_table("change_outbox")
