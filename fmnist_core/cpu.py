"""What this machine's CPU computes natively, for the `auto` precision.

bfloat16 arithmetic is fast only on CPUs that have it in hardware (Intel AMX, AVX-512 BF16); elsewhere TensorFlow
emulates it and training is much slower than in float32. Measured on 2026-12-03, a 2-core AMD EPYC with AVX2 only,
quiet machine: the `quick` model trained at 2,552 images/s in float32 and 316 images/s in mixed_bfloat16 (8x slower);
on a Xeon with AMX the earlier sessions measured bfloat16 ~4x faster than float32. So `auto` picks bfloat16 only
where the CPU says it has it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BFLOAT16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The feature flags the first CPU lists in `cpuinfo` (Linux); empty where there is no such file."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@lru_cache(maxsize=1)
def _this_cpus_flags() -> frozenset[str]:
    return cpu_flags()


def computes_bfloat16_natively(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU (by its `flags`, this machine's by default) has bfloat16 arithmetic in hardware."""
    return bool(BFLOAT16_FLAGS & (_this_cpus_flags() if flags is None else flags))


def precision_for_this_cpu(precision: str, flags: frozenset[str] | None = None) -> str:
    """`precision` as the layers get it: "auto" becomes "mixed_bfloat16" where the CPU computes bfloat16 natively
    and "float32" elsewhere; any other value is returned as it is."""
    if precision != "auto":
        return precision
    return "mixed_bfloat16" if computes_bfloat16_natively(flags) else "float32"
