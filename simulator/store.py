"""Where generated portals live: a cache of pristine stores and per-run working copies.

Generating a large portal takes minutes, so each distinct `DataConfig` is generated once into a cache
(keyed by the config and the generator's own source, so a changed generator never serves a stale
portal) and every server run works on its own copy: live changes never leak into the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from importlib import resources
from pathlib import Path

from b24wh_simulator.config import DataConfig
from b24wh_simulator.generator import generate

_SOURCES = ("generator.py", "reference.py", "schema.sql", "catalogue.py", "config.py")


def cache_dir() -> Path:
    root = os.environ.get("B24SIM_CACHE") or Path.home() / ".cache" / "b24wh-simulator"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_key(cfg: DataConfig) -> str:
    digest = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode())
    package = resources.files("b24wh_simulator")
    for name in _SOURCES:
        digest.update(package.joinpath(name).read_bytes())
    return digest.hexdigest()[:20]


def pristine_store(cfg: DataConfig) -> Path:
    """The generated portal for `cfg`, generating it on first use (atomically, safe to share)."""
    path = cache_dir() / f"portal-{store_key(cfg)}.sqlite3"
    if not path.exists():
        partial = path.with_suffix(f".partial-{os.getpid()}")
        partial.unlink(missing_ok=True)
        generate(str(partial), cfg)
        os.replace(partial, path)
    return path


def working_copy(cfg: DataConfig, dest: Path) -> Path:
    """A private copy of the generated portal at `dest` for one server run."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pristine_store(cfg), dest)
    return dest
