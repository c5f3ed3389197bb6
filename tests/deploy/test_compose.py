"""deploy/: the Compose deployment a user copies (issue #17, item 3) is consistent with the code.

`docker compose config` validates it where the Compose plugin exists; everywhere the file is read
here and checked against what the gateway really reads (Settings), what PgBouncer really loads
(the Debian binary starts on deploy/pgbouncer/pgbouncer.ini) and what the other files name.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.settings import Settings
from tests.live.pgbouncer import BINARY, require_pgbouncer
from tests.live.servers import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
GATEWAYS = ("gateway-1", "gateway-2")
VARIABLE = re.compile(r"\$\{(\w+)[^}]*\}")


def _env_example() -> dict[str, str]:
    """deploy/.env.example: the variables a user sets."""
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """compose.yaml with ${VAR…} filled in from .env.example, as Compose would from .env."""
    env = _env_example()
    text = COMPOSE.read_text()
    assert set(VARIABLE.findall(text)) <= set(env), "a variable missing from .env.example"
    loaded: dict[str, Any] = yaml.safe_load(VARIABLE.sub(lambda m: env[m.group(1)], text))
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


def _pgbouncer_ini() -> configparser.ConfigParser:
    ini = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
    ini.read(DEPLOY / "pgbouncer" / "pgbouncer.ini")
    return ini


def _pgbouncer_entries() -> dict[str, dict[str, str]]:
    """[databases] lines as {name: {key: value}}."""
    entries = {}
    for name, line in _pgbouncer_ini()["databases"].items():
        head, _, query = line.partition(" connect_query=")
        entries[name] = dict(pair.split("=", 1) for pair in head.split())
        entries[name]["connect_query"] = query
    return entries


def _compose_cli() -> list[str] | None:
    """`docker compose` (v2) if it runs here, else Debian's `docker-compose` (v1), else None."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run(
            [docker, "compose", "version"], check=False, capture_output=True
        ).returncode
        == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_accepts_the_file():
    """Compose's own schema check (both versions validate without a Docker engine)."""
    cli = _compose_cli()
    if cli is None:
        pytest.skip(
            "neither `docker compose` nor `docker-compose` here; the checks below still run"
        )
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config", "-q"],
        check=False,
        capture_output=True,
        env={**os.environ, **_env_example()},
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_every_part_of_the_deployment_is_there(services):
    assert set(services) == {"primary", "replica", "pgbouncer", *GATEWAYS, "worker", "lb"}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)


def test_files_the_services_mount_or_build_exist(services):
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), (name, source)
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / "Dockerfile").is_file(), name


def test_gateways_set_only_settings_the_gateway_reads(services):
    known = {name.upper() for name in Settings.model_fields}
    for name in (*GATEWAYS, "worker"):
        assert set(services[name]["environment"]) <= known, name


def test_gateways_pool_through_pgbouncer_and_listen_directly(services):
    entries = _pgbouncer_entries()
    for name in (*GATEWAYS, "worker"):
        env = services[name]["environment"]
        pooled, reads, listen = (
            urlsplit(env[key])
            for key in ("DATABASE_URL", "DATABASE_READ_URL", "DATABASE_LISTEN_URL")
        )
        assert (pooled.hostname, pooled.port) == ("pgbouncer", 6432), name
        assert (reads.hostname, reads.port) == ("pgbouncer", 6432), name
        assert (listen.hostname, listen.port) == ("primary", 5432), name
        # the PgBouncer entries they name lead to the primary and to the replica
        assert entries[pooled.path.lstrip("/")]["host"] == "primary"
        assert entries[reads.path.lstrip("/")]["host"] == "replica"
        assert listen.path == f"/{entries[pooled.path.lstrip('/')]['dbname']}"
        assert env["DB_PREPARED_STATEMENTS"] == "off"
        assert env["DB_STATEMENT_TIMEOUT_MS"] == "0"
    assert "statement_timeout" in entries["gateway"]["connect_query"]


def test_jobs_run_in_the_worker_only(services):
    for name in GATEWAYS:
        assert services[name]["environment"]["GATEWAY_BACKGROUND_JOBS"] == "off"
        assert "command" not in services[name]  # the image's `gateway serve`
    command = services["worker"]["command"]
    assert command[:2] == ["gateway", "worker"] and "--metrics-port" in command
    assert services["worker"]["environment"]["GATEWAY_BACKGROUND_JOBS"] == "on"


def test_pgbouncer_runs_in_transaction_mode_from_debian():
    ini = _pgbouncer_ini()["pgbouncer"]
    assert ini["pool_mode"] == "transaction"
    assert "max_prepared_statements" not in ini  # 1.18 refuses it
    dockerfile = (DEPLOY / "pgbouncer" / "Dockerfile").read_text()
    assert "FROM debian:bookworm" in dockerfile
    assert "apt-get install" in dockerfile and "pgbouncer" in dockerfile


def test_the_real_pgbouncer_loads_the_config():
    """Debian's PgBouncer starts on deploy's pgbouncer.ini (only its paths and port moved)."""
    require_pgbouncer()
    with tempfile.TemporaryDirectory(prefix="gw-deploy-") as folder:
        text = _run_pgbouncer_on_deploy_ini(Path(folder))
    assert "listening on 127.0.0.1:" in text, text
    assert " ERROR " not in text and " FATAL " not in text, text


def _run_pgbouncer_on_deploy_ini(tmp_path: Path) -> str:
    """Start it, wait until it listens or exits, stop it; its log and stderr."""
    port = free_port()
    ini = _pgbouncer_ini()
    ini["pgbouncer"].update(
        {
            "listen_addr": "127.0.0.1",
            "listen_port": str(port),
            "auth_file": str(tmp_path / "userlist.txt"),
            "logfile": str(tmp_path / "pgbouncer.log"),
        }
    )
    (tmp_path / "userlist.txt").write_text('"gateway" "pw"\n')
    with (tmp_path / "pgbouncer.ini").open("w") as out:
        ini.write(out)
    run_as = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    if run_as:
        shutil.chown(tmp_path, "nobody")
        for path in tmp_path.iterdir():
            shutil.chown(path, "nobody")
    log, text = tmp_path / "pgbouncer.log", ""
    with (
        (tmp_path / "stderr").open("wb") as stderr,
        subprocess.Popen(
            [*run_as, BINARY, str(tmp_path / "pgbouncer.ini")], stderr=stderr
        ) as process,
    ):
        try:
            deadline = time.monotonic() + 10
            while f"listening on 127.0.0.1:{port}" not in text and process.poll() is None:
                assert time.monotonic() < deadline, "pgbouncer neither started nor failed"
                time.sleep(0.02)
                text = log.read_text() if log.exists() else ""
        finally:
            process.terminate()
    return text + (tmp_path / "stderr").read_text()


def test_the_balancer_spreads_over_both_gateways_and_passes_websockets(services):
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    for name in GATEWAYS:
        assert f"server {name}:8000" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_buffering off;" in conf
    assert set(services["lb"]["depends_on"]) == set(GATEWAYS)


def test_replica_bootstraps_from_the_primary(services):
    script = DEPLOY / "postgres" / "replica-entrypoint.sh"
    text = script.read_text()
    assert "pg_basebackup" in text and " -R " in text
    assert services["replica"]["environment"]["PRIMARY_HOST"] == "primary"
    for path in (
        script,
        DEPLOY / "postgres" / "primary-init.sh",
        DEPLOY / "pgbouncer" / "entrypoint.sh",
    ):
        assert os.access(path, os.X_OK), path
        shell = "sh" if path.name == "entrypoint.sh" else "bash"
        assert subprocess.run([shell, "-n", str(path)], check=False).returncode == 0, path
