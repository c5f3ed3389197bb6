"""PgBouncer (the Debian package) in transaction mode on a free loopback port, for the live tests.

It fronts an existing PostgreSQL (the test server, over TCP or its Unix socket) with few server
connections, so that consecutive transactions of one client really land on different server
connections: anything the gateway kept in a session would show up as a failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.live.servers import free_port

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def require_pgbouncer() -> None:
    """Skip with the reason when the Debian package is not installed."""
    if not Path(BINARY).exists():
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer; .ci/run does it)")


def _backend(url: str) -> tuple[str, int, str]:
    """(host or socket dir, port, user) of a libpq URL."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or query.get("host", ["127.0.0.1"])[0]
    port = parts.port or int(query.get("port", ["5432"])[0])
    return host, port, parts.username or "postgres"


class PgBouncer:
    """One pgbouncer process; `url(database)` is the pooled URL of a database behind it."""

    def __init__(self, server_url: str, *, pool_size: int = 2) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="gw-pgbouncer-"))
        host, port, self.user = _backend(server_url)
        self.ini = self.dir / "pgbouncer.ini"
        # `any`: no password check; every database logs in as the backend's user.
        self.ini.write_text(
            f"""[databases]
* = host={host} port={port} user={self.user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = any
admin_users = {self.user}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 200
logfile = {self.dir / "pgbouncer.log"}
pidfile = {self.dir / "pgbouncer.pid"}
"""
        )
        self._as: list[str] = []
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            owner = Path(host).stat().st_uid if host.startswith("/") else None
            name = pwd.getpwuid(owner).pw_name if owner else "nobody"
            user = pwd.getpwnam(name)
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            os.chown(self.ini, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", name, "--"]
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*self._as, BINARY, str(self.ini)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while "listening on 127.0.0.1" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer did not start: {self.log()}")
            time.sleep(0.02)

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
