"""BENCH_PRIVATE_PG=1: a PostgreSQL of our own, started with pg_stat_statements preloaded.

The shared server cannot be restarted to preload the extension, so statement counts need a
cluster the benchmark controls. It lives in BENCH_PGDATA (default /tmp/gw-bench-pgdata, kept
between runs so the seed is reused), listens on 127.0.0.1:BENCH_PGPORT (default 55432) and is
stopped when the run ends. As root, initdb and the server run as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = ["private_server"]


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not versions:
        raise SystemExit("BENCH_PRIVATE_PG=1 needs PostgreSQL server binaries (pg_ctl, initdb)")
    return versions[-1].parent


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@contextlib.contextmanager
def private_server() -> Iterator[str]:
    """Start (initialising if needed) the private cluster; yields its server URL."""
    bindir = _bin_dir()
    data = Path(os.environ.get("BENCH_PGDATA", "/tmp/gw-bench-pgdata"))  # noqa: S108
    port = os.environ.get("BENCH_PGPORT", "55432")
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        subprocess.run(
            _as_owner([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={data}"
        " -c shared_preload_libraries=pg_stat_statements -c max_connections=200"
    )
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "log")]
    subprocess.run(
        _as_owner([*start, "-w", "start"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
        )


@contextlib.contextmanager
def server_from_env() -> Iterator[None]:
    """With BENCH_PRIVATE_PG=1, the private cluster is DATABASE_URL for the block; else nothing.

    Every bench entry point (`make bench`, `bench-fanout`, `bench-writes`) runs inside it.
    """
    if os.environ.get("BENCH_PRIVATE_PG") != "1":
        yield
        return
    with private_server() as server:
        os.environ["DATABASE_URL"] = server
        os.environ.pop("BENCH_DATABASE_URL", None)
        yield
