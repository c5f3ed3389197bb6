"""A private PostgreSQL in a temp dir on a free port, which a test may stop and start at will.

Never the machine's shared server: other test runs use it. As root, the server runs as the
`postgres` system user with the machine's PostgreSQL binaries, else (a fresh machine) with
pgserver's binaries as pgserver's own `pgserver` user, as pgserver itself does: PostgreSQL
refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from tests.live.servers import free_port

_SYSTEM_BIN = Path("/usr/lib/postgresql/15/bin")


def _bin_dir() -> Path:
    if (_SYSTEM_BIN / "pg_ctl").exists():
        return _SYSTEM_BIN
    from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC0415

    return Path(POSTGRES_BIN_PATH)


def _root_runs_as(bin_dir: Path) -> str:
    """The system user a root test run starts PostgreSQL as."""
    if bin_dir == _SYSTEM_BIN:
        return "postgres"
    from pgserver import utils  # noqa: PLC0415

    utils.ensure_user_exists("pgserver")
    readable = stat.S_IRGRP | stat.S_IROTH
    utils.ensure_prefix_permissions(bin_dir)
    utils.ensure_folder_permissions(bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
    utils.ensure_folder_permissions(bin_dir.parent / "lib", readable)
    return "pgserver"


class PrivatePostgres:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="gw-live-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:
            name = _root_runs_as(self.bin)
            user = pwd.getpwnam(name)
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", name, "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-t",
            "30",
            "start",
        )

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class StreamingReplica(PrivatePostgres):
    """A hot standby of a running PrivatePostgres: pg_basebackup -R, on its own free port.

    The primary's initdb defaults are enough: wal_level=replica, ten WAL senders, and trust for
    replication connections from 127.0.0.1.
    """

    def __init__(self, primary: PrivatePostgres) -> None:
        super().__init__()
        self.primary = primary

    def init(self) -> None:
        self._run(
            str(self.bin / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            "postgres",
            "-D",
            str(self.data),
            "-R",  # standby.signal + primary_conninfo: it streams from the primary once started
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        )
