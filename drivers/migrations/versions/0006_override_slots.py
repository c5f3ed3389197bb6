"""limit_overrides_active_after_lock(tenant): the tenant's override lock, then its ACTIVE count.

Why a function: the cap of 5 ACTIVE overrides per tenant (DOMAIN.md §3.3) must be counted AFTER
the tenant's advisory lock is granted. A single SQL statement reads one snapshot taken before it
starts, so it cannot take the lock and count what the previous holder committed. A VOLATILE SQL
function takes a fresh snapshot for each of its queries: its second query counts after the lock.
Called from inside requestOverride's one statement, the lock is held only inside the server
(from this call to the statement's commit), never across a client round trip.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION limit_overrides_active_after_lock(p_tenant text) RETURNS bigint
        LANGUAGE sql VOLATILE STRICT AS $$
          SELECT pg_advisory_xact_lock(hashtextextended('limit_overrides:' || p_tenant, 0));
          SELECT count(*) FROM limit_overrides WHERE tenant_id = p_tenant AND status = 'ACTIVE';
        $$
        """
    )
    op.execute(
        "COMMENT ON FUNCTION limit_overrides_active_after_lock(text) IS "
        "'Takes the tenant''s override advisory lock (until commit), then counts its ACTIVE "
        "overrides in a snapshot taken after the lock (the 5-ACTIVE cap, DOMAIN.md 3.3).'"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION limit_overrides_active_after_lock(text)")
