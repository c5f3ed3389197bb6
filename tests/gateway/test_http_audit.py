"""The GraphQL-over-HTTP server audit of npm `graphql-http` passes: no warning, no failure.

tests/http_audit/ pins graphql-http in its package-lock.json; `npm ci` runs once per lock file
(its hash is kept in node_modules). The audit talks to the real app on uvicorn over TCP.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.settings import Settings
from tests.helpers import token
from tests.live.servers import ThreadedServer

AUDIT_DIR = Path(__file__).resolve().parents[1] / "http_audit"
NODE, NPM = shutil.which("node"), shutil.which("npm")

pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None, reason="node and npm are needed for the graphql-http audit"
)


@pytest.fixture(scope="module")
def live(settings: Settings) -> Iterator[ThreadedServer]:
    with ThreadedServer(settings) as server:
        yield server


async def _run(*command: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=AUDIT_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def _install() -> None:
    """`npm ci` from the lock file, skipped when node_modules came from this very lock."""
    lock = hashlib.sha256((AUDIT_DIR / "package-lock.json").read_bytes()).hexdigest()
    stamp = AUDIT_DIR / "node_modules" / ".lock-sha256"
    if stamp.is_file() and stamp.read_text() == lock:
        return
    assert NPM is not None
    code, output = await _run(NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error")
    assert code == 0, output
    stamp.write_text(lock)


async def test_graphql_over_http_server_audit_passes_every_item(live):
    await _install()
    assert NODE is not None

    code, output = await _run(NODE, "audit.mjs", f"{live.url}/graphql", f"Bearer {token()}")

    assert code == 0, output
    lines = output.splitlines()
    assert lines[-1] == "audit: 0 warnings or errors", output
    results = [line.split()[0] for line in lines[:-1]]
    # every audit of graphql-http 1.23.1 ran (MUST, SHOULD and MAY alike) and is "ok"
    assert len(results) == 61, output
    assert set(results) == {"ok"}, output
