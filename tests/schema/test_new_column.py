"""Issue #14 item 1: a column added to a mapped table reaches the API with no other edit.

A scratch migration adds `incidents.blast_radius` to a scratch database; a separate process
(tests/schema/scratch_column.py) extends the table metadata the way a new `Column(...)` line in
drivers/tables.py would, plus one `ArgFilter` on it in the incidents root list (a filter is a
decision, so it takes one mapping line; docs/decisions.md), and nothing else: the generated
GraphQL type shows the field (type, nullability, description from the column comment), the
generated filter input shows the filter, and the resolver path and the compiled path both read
the column and filter by it, with identical answers.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from alembic import command

from drivers.migrate import MIGRATIONS_DIR, alembic_config, head_revision

ROOT = Path(__file__).resolve().parents[2]
COLUMN = "blast_radius"
COMMENT = "How many tenants felt the incident (scratch column)."
FILTER_DESCRIPTION = "blastRadius at least this (scratch filter)."

SCRATCH_MIGRATION = """
from alembic import op
import sqlalchemy as sa

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("{column}", sa.Integer(), comment="{comment}"))


def downgrade() -> None:
    op.drop_column("incidents", "{column}")
"""


def _migrate_with_scratch_revision(url: str, scripts: Path) -> None:
    """Upgrade `url` through the project's migrations plus one scratch revision (a copy)."""
    shutil.copytree(MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    source = SCRATCH_MIGRATION.format(head=head_revision(), column=COLUMN, comment=COMMENT)
    (scripts / "versions" / "9999_scratch_column.py").write_text(source)
    cfg = alembic_config(url)
    cfg.set_main_option("script_location", str(scripts))
    command.upgrade(cfg, "head")


async def test_a_new_column_reaches_the_type_and_both_read_paths(fresh_database_url, tmp_path):
    await asyncio.to_thread(_migrate_with_scratch_revision, fresh_database_url, tmp_path / "m")
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "tests.schema.scratch_column",
            fresh_database_url,
            COLUMN,
            COMMENT,
            FILTER_DESCRIPTION,
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    seen: dict[str, Any] = orjson.loads(done.stdout)

    assert set(seen) == {"introspected", "resolver", "compiled"}
    assert "errors" not in seen["introspected"], seen["introspected"]
    fields = seen["introspected"]["data"]["__type"]["fields"]
    field = next(f for f in fields if f["name"] == "blastRadius")
    assert field == {
        "name": "blastRadius",
        "description": COMMENT,
        "type": {"kind": "SCALAR", "name": "Int", "ofType": None},
    }
    inputs = seen["introspected"]["data"]["filterInput"]["inputFields"]
    assert inputs[-1] == {
        "name": "blastRadius",
        "description": FILTER_DESCRIPTION,
        "type": {"kind": "SCALAR", "name": "Int"},
    }
    for path in ("resolver", "compiled"):
        data = seen[path]["data"]
        assert "errors" not in seen[path], seen[path]
        assert data["incident"]["blastRadius"] == 7
        reach = {n["title"]: n["blastRadius"] for n in data["incidents"]["nodes"]}
        assert reach == {"Budget limit exceeded: 120%": 7, "Unknown reach": None, "Small reach": 3}
        # blastRadius >= 5: the null and the 3 are filtered out on both paths.
        assert data["filtered"]["nodes"] == [
            {"title": "Budget limit exceeded: 120%", "blastRadius": 7}
        ]
    assert seen["resolver"] == seen["compiled"]
