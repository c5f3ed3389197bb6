"""The embedded PostgreSQL does not outlive its owner: whoever starts it stops it; `make stop`."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from gateway.database import (
    embedded_running,
    release_embedded,
    resolve_database_url,
    start_embedded,
    stop_embedded,
)
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dirs() -> Iterator[tuple[Path, Path]]:
    """Two data folders in a short temp path (pgserver puts its Unix socket there)."""
    base = Path(tempfile.mkdtemp(prefix="gw-emb-"))
    yield base / "run", base / "test"
    for folder in (base / "run", base / "test"):
        if (folder / "postmaster.pid").exists():
            stop_embedded(folder)
    # pgserver's logger may still write to a log file in `base` (at exit, too): close it first
    pgserver_log = logging.getLogger("pgserver")
    for handler in [
        h for h in pgserver_log.handlers if str(base) in getattr(h, "baseFilename", "")
    ]:
        pgserver_log.removeHandler(handler)
        handler.close()
    shutil.rmtree(base, ignore_errors=True)


async def _answers(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


async def test_the_process_that_started_the_server_stops_it_on_release(data_dirs):
    run_dir, test_dir = data_dirs
    settings = Settings(database_url="", gateway_data_dir=run_dir)
    # the first user starts it, a second one finds it running
    url, started = await asyncio.to_thread(start_embedded, run_dir)
    again, started_again = await asyncio.to_thread(start_embedded, run_dir)
    assert (started, started_again, again) == (True, False, url)
    assert await _answers(url) == 1
    # another data folder's server is not this one
    assert release_embedded(settings.model_copy(update={"gateway_data_dir": test_dir})) is False
    # this process started it, so releasing stops it
    assert await asyncio.to_thread(release_embedded, settings) is True
    assert not embedded_running(run_dir)
    assert not (run_dir / "postmaster.pid").exists()


async def test_a_server_left_by_another_process_is_reused_and_not_released(data_dirs):
    run_dir, _ = data_dirs
    # another process started it and exited (as `make run` killed without cleanup would)
    await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            f"from gateway.database import start_embedded; start_embedded({str(run_dir)!r})",
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    assert embedded_running(run_dir)
    settings = Settings(database_url="", gateway_data_dir=run_dir)
    url = await asyncio.to_thread(resolve_database_url, settings)
    assert await _answers(url) == 1
    assert release_embedded(settings) is False
    assert embedded_running(run_dir)
    # stop_embedded (what `make stop` calls) stops it whoever started it
    assert await asyncio.to_thread(stop_embedded, run_dir) is True
    assert stop_embedded(run_dir) is False


def test_make_stop_stops_both_embedded_servers(data_dirs):
    run_dir, test_dir = data_dirs
    start_embedded(run_dir)
    start_embedded(test_dir)
    assert embedded_running(run_dir) and embedded_running(test_dir)

    def make_stop() -> str:
        result = subprocess.run(
            [
                shutil.which("make") or "make",
                "--no-print-directory",
                "stop",
                f"DATA_DIR={run_dir}",
                f"TEST_DATA_DIR={test_dir}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return result.stdout.strip()

    assert make_stop() == f"stopped the embedded PostgreSQL in {run_dir} {test_dir}"
    assert not embedded_running(run_dir) and not embedded_running(test_dir)
    assert make_stop() == "no embedded PostgreSQL running"
