"""The CLI as a user runs it: a real process against the test database."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from drivers import tables as t
from gateway.cli import ROLES
from gateway.database import embedded_running
from resolvers.auth import Role
from schema import sdl
from tests.conftest import with_database

ROOT = Path(__file__).resolve().parents[2]


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **extra}


def run_cli(
    database_url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=ROOT,
        env=cli_env(database_url, **(env or {})),
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


# --- help without heavy imports ---------------------------------------------------------------

HELP_COMMANDS = [
    [],
    ["serve"],
    ["worker"],
    ["migrate"],
    ["seed-demo"],
    ["keys"],
    ["keys", "create"],
    ["keys", "revoke"],
    ["schema-export"],
]
HEAVY = ["alembic", "asyncpg", "drivers", "pydantic", "resolvers", "schema", "sqlalchemy"]
HEAVY += ["starlette", "strawberry", "uvicorn", "pgserver", "graphql", "gateway.settings"]

_HELP_PROBE = """
import sys
from gateway.cli import main
try:
    main(sys.argv[1:] + ["--help"])
except SystemExit as exit:
    assert exit.code == 0, exit.code
heavy = [m for m in sys.argv[0].split(",") if m in sys.modules]
print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""


def test_help_loads_no_heavy_module_and_shows_every_default():
    for command in HELP_COMMANDS:
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _HELP_PROBE.replace("sys.argv[0]", repr(",".join(HEAVY))),
                *command,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip() == "HEAVY:", (command, result.stderr)
        assert "usage: gateway" in result.stdout
    serve = run_cli("postgresql://unused@127.0.0.1:1/db", "serve", "--help").stdout
    assert "(default: 127.0.0.1)" in serve and "(default: 8000)" in serve
    create = run_cli("postgresql://unused@127.0.0.1:1/db", "keys", "create", "--help").stdout
    assert "{VIEWER,OPERATOR,ADMIN,INGEST}" in create and "(default: none)" in create
    export = run_cli("postgresql://unused@127.0.0.1:1/db", "schema-export", "--help").stdout
    assert "schema.graphql)" in export


def test_cli_roles_are_the_resolver_roles():
    assert list(ROLES) == [r.value for r in Role]


# --- one line when the database cannot be reached ----------------------------------------------

REFUSED = "postgresql://u@127.0.0.1:1/db"


def test_unreachable_database_is_one_line_for_every_command_that_needs_it():
    for args in (
        ["migrate"],
        ["serve", "--port", "0", "--demo"],
        ["worker"],
        ["keys", "create", "--tenant", "t", "--role", "ADMIN"],
        ["seed-demo", "--tenant", "t"],
    ):
        result = run_cli(REFUSED, *args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr == (
            "error: cannot connect to PostgreSQL at 127.0.0.1:1 (connection refused): "
            "check DATABASE_URL and that the server is running\n"
        ), args
        assert "gwk_" not in result.stdout


def test_wrong_database_url_says_what_to_check(database_url):
    missing_db = with_database(database_url, "no_such_database_here")  # TCP or socket URL
    cases = {
        "postgresql://u@no-such-host.invalid:5432/db": (
            "at no-such-host.invalid:5432 (host name not found): check the host in DATABASE_URL"
        ),
        missing_db: '(database "no_such_database_here" does not exist): check the database name',
        "postgresql://u@/db?host=/no/such/dir": (
            "at socket /no/such/dir/.s.PGSQL.5432 (no socket there): check the socket directory"
        ),
        "mysql://u@h/db": "DATABASE_URL has the unsupported scheme 'mysql'",
    }
    for url, expected in cases.items():
        result = run_cli(url, "migrate")
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert expected in result.stderr


def test_invalid_setting_is_one_line(database_url):
    result = run_cli(database_url, "migrate", env={"LOG_FORMAT": "xml"})
    assert result.returncode == 1
    assert result.stderr.startswith("error: LOG_FORMAT: ") and result.stderr.count("\n") == 1


# --- serve: the port first, progress lines, the key block last ---------------------------------


async def test_port_in_use_is_reported_before_anything_is_written(database_url, engine, tmp_path):
    # given a port something already listens on
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # when
        result = run_cli(
            database_url,
            "serve",
            "--demo",
            "--port",
            str(port),
            env={"GATEWAY_DATA_DIR": str(tmp_path / ".pgdata")},
        )
    # then one line, no key, and nothing seeded
    assert result.returncode == 1
    assert result.stderr == (
        f"error: cannot listen on 127.0.0.1:{port} (already in use): stop what uses it, or pick "
        "another port with --port (make run PORT=…)\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / ".demo-token").exists()
    async with engine.connect() as conn:
        assert (await conn.execute(select(t.api_keys.c.id))).all() == []
        assert (await conn.execute(select(t.incidents.c.id))).all() == []


def _read_until(stream, marker: str, deadline: float) -> list[str]:
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith(marker):
            return lines
    raise AssertionError(f"{marker!r} not seen; got {lines}")


def test_serve_demo_prints_steps_then_a_key_that_works(database_url, tmp_path):
    # given
    env = cli_env(
        database_url,
        GATEWAY_DATA_DIR=str(tmp_path / ".pgdata"),
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
        GATEWAY_BACKGROUND_JOBS="off",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--demo", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # when the server is up
        out = _read_until(proc.stdout, "  Ctrl-C stops the server.", time.monotonic() + 120)
        # then four progress lines, then the block between two rules
        steps = [line for line in out if line.startswith("[")]
        assert [s[:5] for s in steps] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
        assert "connecting to PostgreSQL" in steps[0] and "rows added" in steps[2]
        block = out[out.index(steps[-1]) + 1 :]
        assert block[0] == "" and block[1].startswith("───") and block[-2].startswith("───")
        [url] = [line.split()[-1] for line in block if line.startswith("  GraphiQL")]
        [key] = [line.split()[-1] for line in block if line.startswith("  API key")]
        [curl] = [line.strip() for line in block if "curl -s" in line]
        assert key.startswith("gwk_") and (tmp_path / ".demo-token").read_text() == key + "\n"
        assert curl.startswith(f"try it     curl -s {url} -H 'Authorization: Bearer {key}'")
        # and the printed key answers on the printed URL, as the curl line would send it
        with httpx.Client() as http:
            response = http.post(
                url,
                json={"query": "{ viewer { tenantId role } }"},
                headers={"authorization": f"Bearer {key}", "x-request-id": "cli-ok-1"},
            )
            missing = http.post(
                url,
                json={
                    "query": 'mutation { acknowledgeIncident(id: "00000000-0000-4000-8000-000000000000") { id } }'
                },
                headers={"authorization": f"Bearer {key}", "x-request-id": "cli-nf-1"},
            )
        assert response.json() == {"data": {"viewer": {"tenantId": "demo", "role": "ADMIN"}}}
        assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    # and Ctrl-C stops it cleanly (exit 130, the shell's code for SIGINT), every log line (uvicorn's
    # too) a JSON object
    assert proc.returncode == 130, err
    logs = [json.loads(line) for line in err.splitlines()]
    assert logs[-1]["message"].startswith("Finished server process")
    assert {"uvicorn.error", "gateway.errors"} <= {line["logger"] for line in logs}
    [not_found] = [line for line in logs if line.get("request_id") == "cli-nf-1"]
    assert (not_found["level"], not_found["code"]) == ("INFO", "NOT_FOUND")
    assert "traceback" not in not_found


def _stop_embedded(data_dir: Path) -> None:
    """Stop the server the CLI left running (pgserver never stops it: cleanup_mode=None)."""
    from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC0415 - only this test needs it

    if (data_dir / "postmaster.pid").exists():
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
            user="pgserver" if os.geteuid() == 0 else None,  # pgserver runs it as this user
            capture_output=True,
            timeout=60,
            check=True,
        )


def test_embedded_postgres_output_goes_to_its_log_file(tmp_path):
    # given no DATABASE_URL: the CLI creates an embedded PostgreSQL in GATEWAY_DATA_DIR
    data_dir = tmp_path / ".pgdata"
    try:
        # when
        result = run_cli(
            "", "migrate", env={"GATEWAY_DATA_DIR": str(data_dir), "LOG_LEVEL": "INFO"}
        )
        # then the console has the result only; initdb's and pg_ctl's output is in the log file
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("database at head (empty database → ")
        assert result.stderr == ""
        log = (tmp_path / ".pgdata.log").read_text()
        assert "initdb" in log and "server started" in log
        # the command stopped the server it started (no postgres left behind)
        assert not embedded_running(data_dir)
    finally:
        _stop_embedded(data_dir)


def test_worker_serves_its_job_metrics(database_url):
    # given a worker whose override job runs every 0.2 s, with a metrics port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = cli_env(database_url, JOB_OVERRIDE_SECONDS="0.2", MIGRATE_ON_START="false")
    with subprocess.Popen(
        [sys.executable, "-m", "gateway", "worker", "--metrics-port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        try:
            # when its metrics are scraped after a few ticks
            deadline = time.monotonic() + 60
            runs = 0.0
            while time.monotonic() < deadline and runs < 2 and proc.poll() is None:
                time.sleep(0.2)
                try:
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                except httpx.TransportError:
                    continue
                runs = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("gateway_job_runs_total{") and 'job="overrides"' in line
                )
            # then the override job's runs are counted there
            assert runs >= 2
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)


def test_worker_metrics_port_in_use_is_one_line(database_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            database_url, "worker", "--metrics-port", str(port), env={"MIGRATE_ON_START": "false"}
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: cannot serve metrics on 127.0.0.1:{port}")
    assert result.stderr.count("\n") == 1
