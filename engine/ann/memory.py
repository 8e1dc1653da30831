"""Will a sweep fit? Memory needed by an index, by part, against the memory free right now.

Shared by the exact baseline and the sweeps (its own module so neither imports the other).
"""

from __future__ import annotations

import os

from engine.core.errors import UserError

LIBRARIES = ("hnswlib", "faiss", "scratch")
MAX_N = 5_000_000  # beyond this a teaching sweep makes no sense on one machine, whatever the RAM
MAX_DIM = 4096
MAX_SCRATCH_N = 20_000  # the pure-Python index inserts ~300-1,000 vectors/s on one core
MEMORY_FRACTION = 0.5  # never plan to use more than half of the memory that is free right now


class SweepTooLarge(UserError):
    """A sweep refused before allocating: the message says how much it needs and what to lower."""

    default_code = "memory.sweep_too_large"


def available_memory() -> int:
    """Bytes the OS could give this process now (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # no psutil: ask sysconf
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def estimate_bytes(n: int, dim: int, M: int, library: str = "hnswlib", n_queries: int = 1000) -> dict[str, int]:
    """Peak memory of one sweep setting, by part. The graph: layer 0 holds up to 2·M int32 links per node, the
    upper layers add about 1/(M−1) of that again; the library keeps its own copy of the vectors."""
    vectors = n * dim * 4  # our float32 copy, (n, dim)
    graph = int(n * ((2 * M + 1) * 4 + 8) * (1 + 1 / max(M - 1, 1)))
    parts = {
        "vectors": vectors,
        "index_copy": vectors,  # hnswlib/faiss store the vectors inside the index
        "graph": graph,
        "queries_and_truth": n_queries * dim * 4 + min(16_000_000, n_queries * n) * 4 * 3,
    }
    if library == "faiss":
        parts["serialized"] = vectors + graph  # serialize_index() makes one more copy to measure the size
    if library == "scratch":
        parts["index_copy"] = 0
        parts["python_objects"] = n * (2 * M * 36 + 200)  # Python lists of int objects, not packed int32
    return parts


def check_fits(n: int, dim: int, M: int = 16, library: str = "hnswlib", n_queries: int = 1000) -> int:
    """Refuse absurd or too-large settings with a clear message; returns the estimated peak bytes."""
    if library not in LIBRARIES:
        raise SweepTooLarge("ann.unknown_library", value=library, choices=", ".join(LIBRARIES))
    if n < 2 or dim < 1:
        raise SweepTooLarge("ann.too_few_vectors", n=n, dim=dim)
    if n > MAX_N:
        raise SweepTooLarge("ann.too_many_vectors", n=n, limit=MAX_N, dim=dim, size=_gb(n * dim * 4))
    if dim > MAX_DIM:
        raise SweepTooLarge("ann.dim_too_large", dim=dim, limit=MAX_DIM)
    if library == "scratch" and n > MAX_SCRATCH_N:
        raise SweepTooLarge("ann.scratch_too_large", limit=MAX_SCRATCH_N, n=n)
    parts = estimate_bytes(n, dim, M, library, n_queries)
    need, free = sum(parts.values()), available_memory()
    if need > MEMORY_FRACTION * free:
        detail = ", ".join(f"{k} {_gb(v)}" for k, v in parts.items() if v)
        raise SweepTooLarge("ann.sweep_too_large", n=n, dim=dim, M=M, need=_gb(need), detail=detail, free=_gb(free))
    return need


def _gb(b: float) -> str:
    return f"{b / 1e9:.2f} GB" if b >= 1e8 else f"{b / 1e6:.1f} MB"
