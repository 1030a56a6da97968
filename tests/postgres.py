"""A private PostgreSQL server for the tests: its own data directory, port and socket, stopped afterwards.

Uses the machine's PostgreSQL binaries (Debian's `postgresql` package; `.ci/run` installs it). As root,
the server runs as the `postgres` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port


class PostgresMissing(RuntimeError):
    pass


def binaries() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise PostgresMissing("PostgreSQL is not installed and the test run could not install it: apt-get install -y "
                              "postgresql (see tests/system_packages.py)")
    return Path(candidates[-1]).parent


@contextmanager
def postgres_server() -> Iterator[str]:
    """Starts a server; yields its SQLAlchemy URL (user b24wh, database postgres, no password)."""
    bindir = binaries()
    folder = Path(tempfile.mkdtemp(prefix="b24wh-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    run = lambda *args: subprocess.run([*prefix, *map(str, args)], check=True, capture_output=True,  # noqa: E731
                                       text=True)
    try:
        run(bindir / "initdb", "-D", data, "-U", "b24wh", "-A", "trust", "-E", "UTF8", "--no-sync")
        run(bindir / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        try:
            yield f"postgresql+psycopg://b24wh@127.0.0.1:{port}/postgres"
        finally:
            run(bindir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
