"""The server's settings in one object: read once when a process starts, then passed to what needs them.

Nothing else in `fmnist_core` reads the environment for these. The app reads them once per server (environment,
then `.streamlit/secrets.toml` for the operator password), the CLI once per command (`--models-dir` wins), and a
worker the app starts gets them through its environment (`to_environment`), so both processes agree. Tests build
a `Settings` instead of patching module globals.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPOSITORY_MODELS = Path(__file__).resolve().parent.parent / "models"


def _half_of_memory_mb() -> int:
    """Half of this machine's memory (MemTotal in /proc/meminfo) in MB, the default limit of a run's training; 4,000
    where it cannot be read."""
    try:
        with open("/proc/meminfo") as meminfo:
            kibibytes = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return 4000
    return kibibytes * 1024 // 2 // 1_000_000


class SettingsError(ValueError):
    """A setting in the environment cannot be read; the message names the variable, its value and the fix."""


def _setting(default: Any, variable: str | None, help: str, minimum: float | None = None,
             scale: float = 1.0) -> Any:
    """A field with its environment variable, help text, lower bound and the factor from the variable's unit."""
    return field(default=default, metadata={"variable": variable, "help": help, "minimum": minimum, "scale": scale})


@dataclass(frozen=True)
class Settings:
    """Where the server keeps things and the limits it enforces; each field says its environment variable."""

    models_dir: Path = _setting(REPOSITORY_MODELS, "FMNIST_MODELS_DIR",
                                "the model store: saved runs, the job queue (.jobs) and sweeps (.sweeps)")
    data_dir: Path | None = _setting(None, "FMNIST_DATA_DIR",
                                     "a folder with the four Fashion-MNIST IDX files, looked in first")
    max_train_minutes: float = _setting(30.0, "FMNIST_MAX_TRAIN_MINUTES",
                                        "wall-clock minutes of training one job may take; then it stops like a "
                                        "user stop and keeps what it trained", minimum=1e-3)
    concurrent_jobs: int = _setting(1, "FMNIST_CONCURRENT_JOBS",
                                    "jobs that train at once on this machine (one per 2 cores or so)", minimum=1)
    max_jobs_per_visitor: int = _setting(2, "FMNIST_MAX_JOBS_PER_VISITOR",
                                         "jobs one visitor may have waiting or training at once", minimum=1)
    max_jobs_per_address: int = _setting(4, "FMNIST_MAX_JOBS_PER_ADDRESS",
                                         "jobs waiting or training at once from one network address, all its "
                                         "browsers together (raise it for a class that reaches the server from one "
                                         "address)", minimum=1)
    max_waiting_jobs: int = _setting(12, "FMNIST_MAX_WAITING_JOBS", "jobs waiting in the queue at once, in all",
                                     minimum=1)
    trusted_proxies: int = _setting(0, "FMNIST_TRUSTED_PROXIES",
                                    "reverse proxies in front of the app whose X-Forwarded-For entries it trusts "
                                    "for a visitor's address (0: the connection's own address)", minimum=0)
    max_training_memory_mb: int = _setting(_half_of_memory_mb(), "FMNIST_MAX_TRAINING_MEMORY_MB",
                                           "megabytes a run's training may need, as estimated before it is queued "
                                           "(default: half of this machine's memory)", minimum=1)
    max_saved_runs: int = _setting(100, "FMNIST_MAX_SAVED_RUNS",
                                   "saved runs the store holds (the shipped model aside)", minimum=0)
    max_store_mb: int = _setting(1000, "FMNIST_MAX_STORE_MB", "megabytes of saved runs the store holds",
                                 minimum=0)
    worker_idle_exit_seconds: float = _setting(60.0, "FMNIST_WORKER_IDLE_EXIT",
                                               "seconds an app-started worker waits for a job before it exits and "
                                               "hands its memory back", minimum=0)
    worker_stall_seconds: float = _setting(600.0, "FMNIST_WORKER_STALL_MINUTES",
                                           "a job with no progress and no CPU use for this long is hung: its "
                                           "worker exits and the next resumes it", minimum=1e-3, scale=60.0)
    operator_password: str | None = _setting(None, "FMNIST_OPERATOR_PASSWORD",
                                             "who knows it may stop, cancel and delete anything")
    ray_address: str | None = _setting(None, "FMNIST_RAY_ADDRESS",
                                       "a Ray cluster's head, HOST:PORT as `ray start --head` prints it, to train "
                                       "runs on its nodes (unset: worker processes on this machine)")
    cpus_per_job: float = _setting(2.0, "FMNIST_CPUS_PER_JOB", "CPUs one run takes on a Ray cluster's node",
                                   minimum=0.1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models_dir", Path(self.models_dir))
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.ray_address is not None:
            host, _, port = self.ray_address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise SettingsError(f"ray_address={self.ray_address!r}: expected HOST:PORT, the address of a Ray "
                                    "cluster's head as `ray start --head` prints it (e.g. 10.0.0.5:6379).")
        for spec in dataclasses.fields(self):
            minimum = spec.metadata["minimum"]
            value = getattr(self, spec.name)
            if minimum is not None and not (isinstance(value, int | float) and math.isfinite(value)
                                            and value >= minimum):
                raise SettingsError(f"{spec.name}={value!r}: expected a number of at least {minimum:g} "
                                    f"({spec.metadata['help']}).")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The defaults, then what `environ` (default: this process's) sets, then `overrides` (a CLI flag, a
        secret). Raises SettingsError naming the variable for a value that is not a number or is out of range."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            text = environ.get(spec.metadata["variable"] or "", "").strip()
            if not text or overrides.get(spec.name) is not None:
                continue
            values[spec.name] = _parse(spec, text)
        values.update({name: value for name, value in overrides.items() if value is not None})
        try:
            return cls(**values)
        except SettingsError as error:
            raise SettingsError(f"{error} Fix the environment variable or leave it unset for the default.") from None

    def to_environment(self) -> dict[str, str]:
        """The variables that give a child process (the training worker) these settings; never the password."""
        environment = {}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if value is None or spec.name == "operator_password":
                continue
            scale = spec.metadata["scale"]
            environment[spec.metadata["variable"]] = str(value / scale if scale != 1.0 else value)
        return environment

    def with_changes(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def time_limit_seconds(self) -> float:
        return self.max_train_minutes * 60


def setting_variable(name: str) -> str:
    """The environment variable of the setting `name`, for messages that tell an operator what to change."""
    return next(spec.metadata["variable"] for spec in dataclasses.fields(Settings) if spec.name == name)


def _parse(spec: dataclasses.Field, text: str) -> Any:
    variable, kind = spec.metadata["variable"], spec.type
    try:
        if kind in ("Path", "Path | None"):
            return Path(text).expanduser()
        if kind == "str | None":
            return text
        if kind == "int":
            return int(text)
        return float(text) * spec.metadata["scale"]
    except ValueError:
        expected = "a whole number" if kind == "int" else "a number"
        raise SettingsError(f"{variable}={text[:40]!r}: expected {expected} ({spec.metadata['help']}). Fix it or "
                            "leave it unset for the default.") from None
