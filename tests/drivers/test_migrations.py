"""The migration builds exactly drivers/tables.py, is idempotent and serialized, and downgrades."""

from __future__ import annotations

import ast
import asyncio
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from drivers import tables
from drivers.db import make_engine
from drivers.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    upgrade_head,
)

ROOT = Path(__file__).resolve().parents[2]
TRIGGERS = {
    ("limits", "limits_integrity_required"),
    ("limit_integrity", "limit_integrity_required"),
    ("threshold_signals", "threshold_signals_immutable"),
    ("failure_evidence", "failure_evidence_append_only"),
    ("audit_log", "audit_log_append_only"),
}
FUNCTIONS = {
    "limit_integrity_required",
    "threshold_signals_immutable",
    "reject_append_only_change",
    "limit_overrides_active_after_lock",
}


def _canon(sql: str) -> str:
    """Normalize a CHECK or index predicate so ours and PostgreSQL's rendering compare equal.

    PostgreSQL stores `x IN ('A', 'B')` as `x = ANY (ARRAY['A'::text, 'B'::text])` (and a
    one-element IN as `=`), and adds casts and parentheses; none of that changes meaning.
    """
    s = re.sub(r"::(text|numeric|integer|jsonb)\b", "", sql)
    s = re.sub(r"=\s*ANY\s*\(\s*ARRAY\[", " IN (", s)
    s = re.sub(r"\bIN\s*\(\s*('[^']*')\s*\)", r"= \1", s)  # x IN ('A') is stored as x = 'A'
    return re.sub(r"[\s()\[\]]", "", s).lower()


def _canon_default(sql: str | None) -> str:
    return re.sub(r"::text|[\s()\"]", "", sql or "")


def _default_text(default: Any) -> str:
    arg = getattr(default, "arg", default)
    return str(getattr(arg, "text", arg))


def _is_same_uuid_default(change: Any) -> bool:
    """A modify_default that only differs in how PostgreSQL prints a gen_random_uuid() default.

    Alembic compares non-literal defaults by evaluating both in SQL, and gen_random_uuid() never
    equals itself; those id defaults are compared as normalized text instead. (A callable
    compare_server_default would be neater but crashes on Identity columns in alembic 1.20.)
    """
    if not (isinstance(change, tuple) and change[0] == "modify_default"):
        return False
    conn_default, metadata_default = _default_text(change[5]), _default_text(change[6])
    return "gen_random_uuid" in metadata_default and _canon_default(conn_default) == _canon_default(
        metadata_default
    )


def _schema_diff(sync_conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        sync_conn, opts={"compare_type": True, "compare_server_default": True}
    )
    diff = []
    for item in compare_metadata(context, tables.metadata):
        # Column-level changes come grouped in a list per column.
        changes = item if isinstance(item, list) else [item]
        kept = [change for change in changes if not _is_same_uuid_default(change)]
        if kept:
            diff.append(kept if isinstance(item, list) else kept[0])
    return diff


def _reflected_checks(sync_conn: Connection) -> dict[str, str]:
    inspector = sa.inspect(sync_conn)
    return {
        str(check["name"]): _canon(check["sqltext"])
        for table in tables.metadata.tables
        for check in inspector.get_check_constraints(table)
    }


def _reflected_predicates(sync_conn: Connection) -> dict[str, str | None]:
    inspector = sa.inspect(sync_conn)
    result: dict[str, str | None] = {}
    for table in tables.metadata.tables:
        for index in inspector.get_indexes(table):
            if index.get("duplicates_constraint"):  # the index behind a UNIQUE constraint
                continue
            where = index.get("dialect_options", {}).get("postgresql_where")
            result[str(index["name"])] = _canon(where) if where else None
    return result


def _metadata_checks() -> dict[str, str]:
    return {
        str(c.name): _canon(str(c.sqltext))
        for table in tables.metadata.sorted_tables
        for c in table.constraints
        if isinstance(c, sa.CheckConstraint)
    }


def _metadata_predicates() -> dict[str, str | None]:
    result: dict[str, str | None] = {}
    for table in tables.metadata.sorted_tables:
        for index in table.indexes:
            where = index.dialect_options["postgresql"]["where"]
            result[str(index.name)] = _canon(str(where)) if where is not None else None
    return result


async def _objects(engine: AsyncEngine) -> tuple[set[str], set[tuple[str, str]], set[str]]:
    async with engine.connect() as conn:
        table_names = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
        triggers = {
            (row.tbl, row.tgname)
            for row in await conn.execute(
                sa.text(
                    "SELECT tgrelid::regclass::text AS tbl, tgname FROM pg_trigger"
                    " WHERE NOT tgisinternal"
                )
            )
        }
        functions = set(
            (
                await conn.execute(
                    sa.text(
                        "SELECT proname FROM pg_proc p"
                        " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'"
                    )
                )
            ).scalars()
        )
    return table_names, triggers, functions


async def test_migration_creates_every_table_trigger_and_function(engine):
    table_names, triggers, functions = await _objects(engine)
    assert table_names == set(tables.metadata.tables) | {"alembic_version"}
    assert triggers == TRIGGERS
    assert functions == FUNCTIONS


# Tables that hold no tenant's data (docs/decisions.md § Trusted documents).
GLOBAL_TABLES = {"trusted_documents"}


async def test_every_table_has_tenant_id_not_null():
    missing = [
        name
        for name, table in tables.metadata.tables.items()
        if name not in GLOBAL_TABLES and ("tenant_id" not in table.c or table.c.tenant_id.nullable)
    ]
    assert missing == []


async def test_metadata_matches_migrated_database(engine):
    async with engine.connect() as conn:
        diff = await conn.run_sync(_schema_diff)
        checks = await conn.run_sync(_reflected_checks)
        predicates = await conn.run_sync(_reflected_predicates)
    # Columns, types, nullability, server defaults, indexes, unique constraints, foreign keys.
    assert diff == []
    # Alembic does not compare CHECK constraints or partial-index predicates; compare them here.
    assert checks == _metadata_checks()
    assert predicates == _metadata_predicates()


async def test_foreign_keys_have_the_domain_delete_rules(engine):
    expected = {
        ("limit_integrity", "limits"): "CASCADE",
        ("limit_breaches", "limits"): "CASCADE",
        ("limit_breaches", "runs"): "SET NULL",
        ("limit_breaches", "incidents"): "SET NULL",
        ("limit_overrides", "limits"): "CASCADE",
        ("incidents", "runs"): "SET NULL",
        ("incident_events", "incidents"): "CASCADE",
        ("incident_evidence", "incidents"): "CASCADE",
        ("lessons_learned", "policy_proposals"): "SET NULL",
        ("policy_violations", "incidents"): "SET NULL",
        ("run_steps", "runs"): "CASCADE",
        ("run_failures", "runs"): "CASCADE",
        ("failure_evidence", "run_failures"): "CASCADE",
        ("circuit_breakers", "breaker_incidents"): "SET NULL",
        ("execution_scopes", "incidents"): "CASCADE",
    }

    def reflect(sync_conn: Connection) -> dict[tuple[str, str], str]:
        inspector = sa.inspect(sync_conn)
        return {
            (table, fk["referred_table"]): fk["options"].get("ondelete", "NO ACTION")
            for table in tables.metadata.tables
            for fk in inspector.get_foreign_keys(table)
        }

    async with engine.connect() as conn:
        assert await conn.run_sync(reflect) == expected


async def test_second_upgrade_is_a_no_op(database_url, engine):
    before = await _objects(engine)
    await asyncio.to_thread(upgrade_head, database_url)
    async with engine.connect() as conn:
        assert await current_revision(conn) == head_revision()
        assert await conn.run_sync(_schema_diff) == []
    assert await _objects(engine) == before


async def test_current_revision_is_none_before_any_migration(fresh_database_url):
    eng = make_engine(fresh_database_url, poolclass=NullPool)
    try:
        async with eng.connect() as conn:
            assert await current_revision(conn) is None
    finally:
        await eng.dispose()


async def test_downgrade_to_base_then_upgrade_head(fresh_database_url):
    eng = make_engine(fresh_database_url, poolclass=NullPool)
    try:
        await asyncio.to_thread(upgrade_head, fresh_database_url)
        await asyncio.to_thread(downgrade, fresh_database_url, "base")
        table_names, triggers, functions = await _objects(eng)
        assert table_names == {"alembic_version"}
        assert triggers == set()
        assert functions == set()
        async with eng.connect() as conn:
            assert await current_revision(conn) is None

        await asyncio.to_thread(upgrade_head, fresh_database_url)
        table_names, triggers, functions = await _objects(eng)
        assert table_names == set(tables.metadata.tables) | {"alembic_version"}
        assert (triggers, functions) == (TRIGGERS, FUNCTIONS)
        async with eng.connect() as conn:
            assert await current_revision(conn) == head_revision()
            assert await conn.run_sync(_schema_diff) == []
    finally:
        await eng.dispose()


async def _assert_at_head_once(url: str) -> None:
    eng = make_engine(url, poolclass=NullPool)
    try:
        async with eng.connect() as conn:
            assert await current_revision(conn) == head_revision()
            versions = (
                await conn.execute(sa.text("SELECT count(*) FROM alembic_version"))
            ).scalar()
            assert versions == 1
            assert await conn.run_sync(_schema_diff) == []
    finally:
        await eng.dispose()


async def test_concurrent_upgrades_in_one_process_serialize(fresh_database_url):
    await asyncio.gather(*(asyncio.to_thread(upgrade_head, fresh_database_url) for _ in range(3)))
    await _assert_at_head_once(fresh_database_url)


async def test_concurrent_upgrades_from_several_processes_serialize(fresh_database_url):
    # Replicas starting together: without the advisory lock in env.py the losers fail creating
    # alembic_version or the first table.
    script = "import sys; from drivers.migrate import upgrade_head; upgrade_head(sys.argv[1])"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            fresh_database_url,
            cwd=ROOT,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(3)
    ]
    results = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), timeout=120)
    assert [p.returncode for p in procs] == [0, 0, 0], [err.decode() for _, err in results]
    await _assert_at_head_once(fresh_database_url)


async def test_upgrade_head_called_on_the_event_loop_thread_still_works(fresh_database_url):
    # Async callers should use to_thread; a direct call falls back to a worker thread.
    upgrade_head(fresh_database_url)
    eng = make_engine(fresh_database_url, poolclass=NullPool)
    try:
        async with eng.connect() as conn:
            assert await current_revision(conn) == head_revision()
    finally:
        await eng.dispose()


def test_alembic_config_escapes_percent_encoded_passwords():
    cfg = alembic_config("postgresql://gw:p%40ss%25word@db.internal:5432/gw")
    assert cfg.get_main_option("sqlalchemy.url") == (
        "postgresql+asyncpg://gw:p%40ss%25word@db.internal:5432/gw"
    )
    assert cfg.get_main_option("script_location") == str(MIGRATIONS_DIR)


def test_history_is_one_line_ending_at_the_newest_revision():
    # Parallel branches each adding a migration would leave two heads; alembic then refuses
    # `upgrade head`. The newest file must be the single head.
    newest = max(p.name.split("_")[0] for p in (MIGRATIONS_DIR / "versions").glob("0*.py"))
    assert head_revision() == newest


@pytest.mark.parametrize("path", sorted((MIGRATIONS_DIR / "versions").glob("*.py")))
def test_migrations_do_not_import_the_application(path):
    # Migrations are frozen history: importing drivers.tables would make old revisions change
    # whenever the current model does.
    tree = ast.parse(path.read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {
        m for m in imported if m.split(".")[0] in {"drivers", "gateway", "schema", "resolvers"}
    }
