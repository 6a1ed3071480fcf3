"""What every benchmark shares: a result row, percentiles, subprocess Python, the machine's description."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
QUIET_TENSORFLOW = {"TF_CPP_MIN_LOG_LEVEL": "2"}


@dataclass(frozen=True)
class Row:
    """One measured figure, its target (if the issue set one) and whether it met it."""

    section: str
    measure: str
    value: str
    target: str = ""
    met: bool | None = None
    note: str = ""


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1000.0, q))


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 1800) -> dict:
    """Run `code` in a fresh Python (the project's venv) from the repository; it prints one JSON line last."""
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**os.environ, **QUIET_TENSORFLOW, **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def package_version(name: str) -> str:
    """The installed version of the distribution `name`. TensorFlow is installed as tensorflow-cpu on Linux x86-64
    (requirements.txt): the same module under another distribution name, said so in the version."""
    import importlib.metadata as metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        if name != "tensorflow":
            raise
        return f"{metadata.version('tensorflow-cpu')} (tensorflow-cpu)"


def machine() -> dict[str, str]:
    """Cores, CPU, memory, date and the versions the figures depend on."""
    memory_kib = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal")), 0)
    versions = {name: package_version(name) for name in
                ("tensorflow", "keras", "streamlit", "numpy", "pillow", "playwright")}
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu_model(),
        "memory": f"{memory_kib / 2**20:.0f} GiB",
        "load average (1 min) at start": f"{os.getloadavg()[0]:.2f}",
        "python": platform.python_version(),
        "os": platform.platform(),
        **versions,
    }
