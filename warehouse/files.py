"""The files a project keeps: where they are, whether they can be written, and what a failure on them means.

- `project_dir()`: the folder every relative path resolves against, the same for every step and entry point:
  `B24WH_HOME` when set, else the nearest folder from the current one upwards that holds `b24wh.toml` or
  `data/warehouse.duckdb`, else the current folder. A project folder that is copied or moved keeps working
  against its own files, and a command run from a subfolder finds the project's warehouse instead of
  starting a stray one.
- `resolve()`: a path from an option, an environment variable or the settings file, made absolute.
- `writer_lock()`: one writer per warehouse file; a second refresh is refused at once, naming the holder.
- `kept_open()`: the warehouse held open between a refresh's steps, so their connections share one DuckDB
  instance instead of each reading the catalogue again and checkpointing on close.
- `check_warehouse()`: before any request, that the warehouse can be opened for writing.
- `explain()`: a local failure (lock, read-only folder, a directory, a corrupt file, a full disk) as one
  line that names the file and what to do, instead of the driver's text.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

HOME_ENV = "B24WH_HOME"
SETTINGS_FILE = "b24wh.toml"
WAREHOUSE_FILE = Path("data") / "warehouse.duckdb"


class LocalFileError(RuntimeError):
    """A file or folder of the project cannot be used; the message names it and what to do."""


def project_dir() -> Path:
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / SETTINGS_FILE).is_file() or (folder / WAREHOUSE_FILE).is_file():
            return folder
    return here


def resolve(path: Path | str, base: Path | None = None) -> Path:
    """`path` made absolute: as it is when absolute, else against `base` (default: the project folder)."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else (base or project_dir()) / candidate


def default_warehouse() -> Path:
    return resolve(os.environ.get("B24WH_WAREHOUSE") or WAREHOUSE_FILE)


@contextmanager
def writer_lock(warehouse: Path) -> Iterator[None]:
    """Holds `<warehouse>.lock` for the duration: a second writer is refused at once with the holder's PID."""
    try:
        import fcntl
    except ImportError:     # Windows: DuckDB's own file lock still keeps a second writer out
        yield
        return
    lock_path = warehouse.with_name(warehouse.name + ".lock")
    _writable_folder(lock_path.parent, warehouse)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")    # noqa: SIM115 - held open for the duration of the lock
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LocalFileError(
                f"warehouse {warehouse} is locked: another refresh is writing it (PID {holder}): wait for it to "
                f"finish, or see which process holds it with `fuser {lock_path}`") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


@contextmanager
def kept_open(warehouse: Path) -> Iterator[None]:
    """Holds the warehouse open for the duration. DuckDB keeps one database instance per file and process, so
    every other connection to the file meanwhile (the steps' own, dlt's) joins it: no catalogue read on opening,
    no checkpoint on closing, the buffer pool warm from one step to the next; the file is checkpointed once, when
    this connection closes. Meanwhile connections to the file must be read-write with DuckDB's default
    configuration, and the file cannot be attached elsewhere in the process (publication attaches it)."""
    with duckdb.connect(str(warehouse)):
        yield


def check_warehouse(warehouse: Path) -> None:
    """Refuses, before any request, a warehouse that cannot be opened for writing."""
    if warehouse.is_dir():
        raise LocalFileError(_a_directory(warehouse))
    _writable_folder(warehouse.parent, warehouse)
    if warehouse.exists():
        if not os.access(warehouse, os.W_OK):
            raise LocalFileError(_read_only(warehouse, warehouse))
        try:
            duckdb.connect(str(warehouse)).close()
        except duckdb.Error as exc:
            raise LocalFileError(explain(exc, warehouse) or f"warehouse {warehouse} cannot be opened: {exc}") from None


def _writable_folder(folder: Path, warehouse: Path) -> None:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LocalFileError(f"{existing} is a file, so warehouse {warehouse} cannot be created under it: point "
                             "--warehouse (or B24WH_WAREHOUSE) elsewhere")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise LocalFileError(_read_only(existing, warehouse))


def _a_directory(warehouse: Path) -> str:
    return (f"warehouse {warehouse} is a directory, not a file: point --warehouse (or B24WH_WAREHOUSE) at a file "
            "such as data/warehouse.duckdb, or move the directory away")


def _read_only(path: Path, warehouse: Path) -> str:
    return (f"{path} is read-only, so warehouse {warehouse} cannot be written: make it writable for this user, "
            "or point --warehouse (or B24WH_WAREHOUSE) at a writable folder")


def explain(exc: BaseException, warehouse: Path) -> str | None:
    """One line for a local failure anywhere in the exception's chain; None when it is not one."""
    for cause in _chain(exc):
        number = cause.errno if isinstance(cause, OSError) else None
        text = str(cause)
        if number == errno.ENOSPC or "No space left on device" in text or "disk is full" in text.lower():
            return _disk_full(warehouse)
        if "Could not set lock on file" in text or "Conflicting lock" in text:
            holder = text.split("(PID ", 1)[1].split(")", 1)[0] if "(PID " in text else "another process"
            return (f"warehouse {warehouse} is locked by another process (PID {holder}): wait for it to finish, "
                    f"or see which process holds it with `fuser {warehouse}`")
        if number == errno.EISDIR or "Is a directory" in text:
            return _a_directory(warehouse)
        if number in (errno.EACCES, errno.EPERM, errno.EROFS) or "Permission denied" in text \
                or "Read-only file system" in text:
            return _read_only(warehouse.parent, warehouse)
        if "not a valid DuckDB database file" in text or "Serialization Error" in text or "Corrupt" in text \
                or "corrupt" in text:
            return (f"warehouse {warehouse} is damaged: move it away and either restore the last publication "
                    f"(cp {_published(warehouse)} {warehouse}, then `b24wh refresh --rebuild`) or reload "
                    "everything with `b24wh refresh`")
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _published(warehouse: Path) -> Path:
    return warehouse.parent / "published" / "warehouse.duckdb"


def _disk_full(warehouse: Path) -> str:
    folder = warehouse.parent if warehouse.parent.exists() else Path.cwd()
    free = shutil.disk_usage(folder).free / 2**20
    size = warehouse.stat().st_size / 2**20 if warehouse.is_file() else 0.0
    need = max(256.0, 2 * size)
    return (f"the disk holding {folder} is full ({free:,.0f} MB free): free at least {need:,.0f} MB there (twice "
            f"the warehouse's {size:,.0f} MB, for the load and the model's new version), then run the command "
            "again; the warehouse is as it was before")
