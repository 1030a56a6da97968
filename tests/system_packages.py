"""What the tests need from the machine beyond Python packages, installed when missing.

The publishing tests start a private PostgreSQL server from its binaries and the wall's tests drive a
headless Chromium. `pytest` (the README's test command, which CI runs) calls `ensure()` once at the start:
what is found is used where it is; what is missing is installed from Debian's packages when the run may
(as root, or with password-less sudo); otherwise one line says what to install, and the tests that need
it fail with the same advice.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

# Debian package -> is it on this machine?
NEEDED = {
    "chromium": lambda: bool(shutil.which("chromium") or shutil.which("chromium-browser")),
    "postgresql": lambda: bool(shutil.which("pg_ctl") or glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")),
}


def missing() -> list[str]:
    return [package for package, present in NEEDED.items() if not present()]


def ensure() -> None:
    absent = missing()
    if not absent:
        return
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        prefix = ["sudo", "-n"]
    else:
        print(f"tests: {' and '.join(absent)} missing and this user cannot install them: "
              f"apt-get install {' '.join(absent)}", file=sys.stderr)
        return
    if not shutil.which("apt-get"):
        print(f"tests: {' and '.join(absent)} missing: install them with this system's package manager",
              file=sys.stderr)
        return
    print(f"tests: installing {' '.join(absent)} from Debian's packages (once per machine)...", file=sys.stderr)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *absent]):
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, env=environment)
        if done.returncode != 0:
            print(f"tests: {' '.join(command)} failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return
