"""The CLI as a user runs it: a real process against the test database."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from drivers import tables as t
from schema import sdl

ROOT = Path(__file__).resolve().parents[2]


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_keys_create_prints_token_last_and_stores_only_its_hash(database_url, engine):
    # when
    result = run_cli(
        database_url, "keys", "create", "--tenant", "acme", "--role", "OPERATOR", "--name", "ci"
    )
    # then
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("gwk_") and len(token) > 40
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.api_keys))).mappings().all()
    assert len(rows) == 1
    row = rows[0]
    assert (row["tenant_id"], row["role"], row["name"]) == ("acme", "OPERATOR", "ci")
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(dict(row))
    # and revoking it by id marks it revoked
    revoked = run_cli(database_url, "keys", "revoke", row["id"])
    assert revoked.returncode == 0, revoked.stderr
    async with engine.connect() as conn:
        revoked_at = (await conn.execute(select(t.api_keys.c.revoked_at))).scalar_one()
    assert revoked_at is not None


def test_keys_create_refuses_unknown_role(database_url):
    result = run_cli(database_url, "keys", "create", "--tenant", "acme", "--role", "ROOT")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_revoking_unknown_key_fails(database_url):
    result = run_cli(database_url, "keys", "revoke", "no-such-key")
    assert result.returncode != 0
    assert "no-such-key" in result.stderr


def test_migrate_is_idempotent(database_url):
    first = run_cli(database_url, "migrate")
    second = run_cli(database_url, "migrate")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "database at head" in second.stdout


async def test_seed_demo_twice_adds_rows_once(database_url, engine):
    first = run_cli(database_url, "seed-demo", "--tenant", "demo")
    second = run_cli(database_url, "seed-demo", "--tenant", "demo")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "0 rows added" not in first.stdout
    assert "0 rows added" in second.stdout
    async with engine.connect() as conn:
        tenants = set((await conn.execute(select(t.incidents.c.tenant_id).distinct())).scalars())
    assert tenants == {"demo"}


def test_schema_export_writes_the_live_sdl(tmp_path, database_url):
    out = tmp_path / "schema.graphql"
    result = run_cli(database_url, "schema-export", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == sdl()
