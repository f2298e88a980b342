"""One writer per output: a lock file beside every corpus build and stage output.

Two runs writing the same output at once would each take the other's temporary files for the
leftovers of an interrupted run and delete them. :func:`output_lock` makes the second run stop
with a message naming the first (its pid, host and start time) instead, or wait for it
(``wait=True``: the datamodule does, so that DDP ranks share one corpus build). A lock left by a
run that was killed (``kill -9``, a crash, a lost node) is recognised as stale when its process is
gone on this host, and removed; a lock from another host is never taken over silently.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STALE_UNREADABLE_SECONDS = 30.0
"""A lock file that cannot be read (its writer died while creating it) is stale after this long."""


class OutputLocked(FileExistsError):
    """Another live run is writing the same output."""


def lock_path(target: str | Path) -> Path:
    """``<target>.lock``, beside the output it guards."""
    target = Path(target)
    return target.parent / f"{target.name}.lock"


def _read(lock: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _stale(lock: Path, holder: dict[str, Any] | None) -> str | None:
    """Why the lock is stale, or ``None`` when its holder may still be running."""
    if holder is None:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return "it is gone"
        return "it is unreadable" if age > STALE_UNREADABLE_SECONDS else None
    if holder.get("host") != socket.gethostname():
        return None
    pid = holder.get("pid")
    if not isinstance(pid, int) or not _alive(pid):
        return f"its process {pid} is no longer running"
    return None


def describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "a run that is still creating its lock"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')} (since {started}: {holder.get('command')})"


def _try_acquire(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "command": " ".join(sys.argv)[:200],
    }
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(holder) + "\n")
    return True


@contextmanager
def output_lock(
    target: str | Path, *, wait: bool = False, poll_seconds: float = 1.0
) -> Iterator[Path]:
    """Hold ``<target>.lock`` while writing ``target``.

    Raises :class:`OutputLocked` when another live run holds it (``wait=False``), or waits until
    it is released (``wait=True``). Stale locks are removed with a message.
    """
    lock = lock_path(target)
    lock.parent.mkdir(parents=True, exist_ok=True)
    announced = False
    while not _try_acquire(lock):
        holder = _read(lock)
        reason = _stale(lock, holder)
        if reason is not None:
            print(f"removing the stale lock {lock} ({reason})", file=sys.stderr)
            lock.unlink(missing_ok=True)
            continue
        if not wait:
            raise OutputLocked(
                f"{target} is being written by another run, {describe(holder)}: wait for it to "
                f"finish; if it is dead (another host cannot be checked), remove {lock}"
            )
        if not announced:
            print(f"waiting for {describe(holder)} to finish writing {target}", file=sys.stderr)
            announced = True
        time.sleep(poll_seconds)
    try:
        yield lock
    finally:
        holder = _read(lock)
        if holder is not None and holder.get("pid") == os.getpid():
            lock.unlink(missing_ok=True)


def build_folder_once(
    target: str | Path, finished: Callable[[], bool], build: Callable[[Path], None]
) -> Path:
    """``target``, built by ``build(work)`` unless ``finished()`` says it already is.

    ``build`` fills an empty temporary folder beside ``target``, which is then renamed into place
    (replacing a stale or half-built ``target``), all under ``target``'s lock: an interrupted
    build leaves nothing ``finished`` could take for a result, and processes that race (DDP ranks,
    loader workers) wait for the first one's build instead of repeating it."""
    target = Path(target)
    if finished():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(target, wait=True):
        if finished():  # another process built it while this one waited
            return target
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            build(work)
            if target.exists():
                shutil.rmtree(target)
            os.replace(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target
