"""Memory-mapped corpus files whose resident pages each process keeps under a budget.

A loader worker that reads rows of a memory-mapped Arrow table at random keeps every page it
touched mapped (and, through the kernel's fault-around, up to 15 neighbours of each): its resident
set grows with the corpus until it holds the worker's whole shard, although nothing of it is the
worker's own memory. The kernel can drop those pages, but resident-set accounting (``VmHWM``,
SLURM's and most job schedulers' RSS limits, which add up every process) still counts them, once
per worker. So the kit maps the Arrow files itself (:func:`map_file`, read-only, shared) and
every :data:`CHECK_EVERY` reads compares the process's resident file pages with what they were
after the last release; above :data:`budget_mib` it tells the kernel it no longer needs the
mapped pages (``madvise(MADV_DONTNEED)``: the mapping stays valid and the next read of a page
faults it back in from the page cache, or from disk). Resident memory then stays within the
budget of what the process had before it read anything, whatever the corpus size.

The budget is ``LST_LIGHTNING_MAPPED_MIB`` (MiB, default 32; ``0`` turns the release off).
"""

from __future__ import annotations

import mmap
import os
import weakref
from pathlib import Path

CHECK_EVERY = 64
"""Reads between two looks at the resident file pages (reading ``/proc/self/statm`` costs ~10 us)."""
budget_mib = float(os.environ.get("LST_LIGHTNING_MAPPED_MIB", "32"))
"""Resident file pages a process may gain over its level after the last release, MiB."""
FALLBACK_RELEASE_EVERY = 4096
"""Where ``/proc/self/statm`` does not exist: release after this many reads."""

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_maps: weakref.WeakSet = weakref.WeakSet()
_reads = 0
_level: float | None = None
releases = 0
"""How many times this process released its mapped pages (for tests and benchmarks)."""


def map_file(path: str | Path) -> mmap.mmap:
    """``path`` mapped read-only and shared, registered for :func:`release`."""
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    register(mapped)
    return mapped


def register(mapped: mmap.mmap) -> None:
    """Count an existing mapping (e.g. a ``np.load(..., mmap_mode="r")``'s) in the release."""
    _maps.add(mapped)


def resident_file_mib() -> float | None:
    """This process's resident file-backed and shared pages (``statm``'s third field), MiB;
    ``None`` where ``/proc`` does not exist."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[2]) * _PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return None


def release() -> None:
    """Drop this process's resident pages of every registered mapping (they stay mapped)."""
    global _level, releases
    for mapped in list(_maps):
        try:
            mapped.madvise(mmap.MADV_DONTNEED)
        except (ValueError, OSError):  # closed meanwhile
            pass
    releases += 1
    _level = resident_file_mib()


def note_read() -> None:
    """One row was read from a registered mapping: release the pages when over the budget."""
    global _reads, _level
    _reads += 1
    if _reads % CHECK_EVERY or budget_mib <= 0 or not _maps:
        return
    now = resident_file_mib()
    if now is None:
        if _reads % FALLBACK_RELEASE_EVERY == 0:
            release()
        return
    if _level is None or now < _level:
        _level = now
    elif now - _level > budget_mib:
        release()


def reset_after_fork() -> None:
    """A forked child starts its own count (its resident pages are not its parent's)."""
    global _reads, _level
    _reads, _level = 0, None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=reset_after_fork)
