"""Hyperparameter sweeps with Keras Tuner: a spec of what varies, trials trained through `training.train`.

Keras Tuner's oracles (grid, random, Hyperband) choose each trial's values; every trial is an ordinary
training run of `preset(base).with_changes(**values)` on a subset for a few epochs, so it sends the usual
training events plus a `TrialEnd`, and honours the stop event between batches. With the KERASTUNER_*
environment variables set, the same code runs as a distributed chief (the oracle) or worker (trials).
This module reads and checks what a person asks for, without importing Keras Tuner; `sweep_tuner` is the
Keras Tuner side, imported when a sweep runs. Its messages fit the web page and the CLI alike.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .hyperparameters import (
    MAX_EPOCHS,
    PRESETS,
    TRAIN_SET_SIZE,
    HyperParameterError,
    HyperParameters,
    _check_field,
    field_specs,
)

STRATEGIES = ("grid", "random", "hyperband")
OBJECTIVE = "val_accuracy"
MAX_TRIALS = 200
NOT_SWEPT = ("filters", "extra_dense_units", "epochs", "train_subset_size")  # lists; or set by the budget
# Keras Tuner's distributed settings, read from the environment: this process's id, the chief's address and port
DISTRIBUTED_VARIABLES = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


class SweepError(HyperParameterError):
    """A sweep setting is invalid; the message says what was passed, what was expected and how to fix it."""


class SweepStopped(Exception):
    """Raised inside the tuner's loop when a stop was requested; `run_sweep` turns it into a result."""


@dataclass(frozen=True)
class Range:
    """A continuous or whole-number range to sample from (random and Hyperband strategies)."""

    low: float
    high: float


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep varies and its budget; validated against the HyperParameters field metadata."""

    vary: tuple[tuple[str, tuple | Range], ...]  # (field, values or Range), e.g. (("learning_rate", (1e-3, 1e-4)),)
    strategy: str = "grid"
    max_trials: int = 6
    epochs_per_trial: int = 2
    subset_size: int = 5000  # training images per trial (0: all); 10 % of them validate
    base_preset: str = "quick"
    seed: int = 42
    objective: str = OBJECTIVE

    def __post_init__(self) -> None:
        if isinstance(self.vary, dict):
            object.__setattr__(self, "vary", tuple(self.vary.items()))
        vary = tuple((name, values if isinstance(values, Range) else tuple(values)) for name, values in self.vary)
        object.__setattr__(self, "vary", vary)
        _check_budget(self)
        if not self.vary:
            raise SweepError("nothing to vary: give at least one hyperparameter with its values, "
                             "e.g. learning_rate=1e-3,1e-4.")
        names = [name for name, _ in self.vary]
        if len(set(names)) != len(names):
            raise SweepError(f"a hyperparameter is varied twice ({', '.join(names)}); give each once.")
        for name, values in self.vary:
            _check_values(self, name, values)

    @property
    def base(self) -> HyperParameters:
        return PRESETS[self.base_preset]

    def grid_size(self) -> int | None:
        """Number of value combinations (None when a range is varied)."""
        if any(isinstance(values, Range) for _, values in self.vary):
            return None
        return math.prod(len(values) for _, values in self.vary)

    def trials_at_most(self) -> int:
        """The trials the sweep can run: its budget, or fewer when its values have fewer combinations."""
        size = self.grid_size()
        return self.max_trials if size is None else min(size, self.max_trials)


def spec_to_dict(spec: SweepSpec) -> dict[str, Any]:
    """The spec as plain JSON data (for the job queue); `spec_from_dict` reads it back, checked again."""
    data = {item.name: getattr(spec, item.name) for item in fields(SweepSpec)}
    data["vary"] = [[name, {"low": values.low, "high": values.high} if isinstance(values, Range) else list(values)]
                    for name, values in spec.vary]
    return data


def spec_from_dict(data: dict[str, Any]) -> SweepSpec:
    vary = tuple((name, Range(**values) if isinstance(values, dict) else tuple(values))
                 for name, values in data["vary"])
    return SweepSpec(**{**data, "vary": vary})


def _check_budget(spec: SweepSpec) -> None:
    if spec.strategy not in STRATEGIES:
        raise SweepError(f"strategy={spec.strategy!r}: expected one of {', '.join(STRATEGIES)}.")
    if spec.base_preset not in PRESETS:
        raise SweepError(f"base preset {spec.base_preset!r} is unknown; expected one of: {', '.join(PRESETS)}.")
    if spec.objective != OBJECTIVE:
        raise SweepError(f"objective={spec.objective!r}: only {OBJECTIVE!r} is supported.")
    for name, value, low, high in (("max_trials", spec.max_trials, 1, MAX_TRIALS),
                                   ("epochs_per_trial", spec.epochs_per_trial, 1, MAX_EPOCHS),
                                   ("subset_size", spec.subset_size, 0, TRAIN_SET_SIZE)):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise SweepError(f"{name}={value!r}: expected a whole number in {low}-{high}.")
    if 0 < spec.subset_size < 500:
        raise SweepError(f"subset_size={spec.subset_size}: expected 0 (all images) or at least 500, "
                         "so that every class has images to validate on.")


def _check_values(spec: SweepSpec, name: str, values: tuple | Range) -> None:
    specs = field_specs()
    if name not in specs:
        raise SweepError(f"cannot vary {name!r}: not a hyperparameter. Expected one of: "
                         f"{', '.join(n for n in specs if n not in NOT_SWEPT)}.")
    if name in NOT_SWEPT:
        raise SweepError(f"cannot vary {name!r} in a sweep: epochs and train_subset_size are the sweep's budget "
                         "(epochs and training images per trial), and list-valued fields are not offered. "
                         "Vary another field.")
    if isinstance(values, Range):
        if spec.strategy == "grid":
            raise SweepError(f"{name}={values.low:g}..{values.high:g}: a grid needs listed values, "
                             f"e.g. {name}=a,b,c; ranges work with the random or hyperband strategy.")
        if specs[name]["type"] not in ("int", "float") or "min" not in specs[name]:
            raise SweepError(f"{name}: a range works for numbers only; list its values instead.")
        if not values.low < values.high:
            raise SweepError(f"{name}={values.low:g}..{values.high:g}: the low end must be below the high end.")
        values = (values.low, values.high)
        if specs[name]["type"] == "int":
            values = tuple(int(v) for v in values)
    if not values:
        raise SweepError(f"{name}: no values given; list at least one, e.g. {name}={specs[name]['default']!r}.")
    if len(set(values)) != len(values):
        raise SweepError(f"{name}={list(values)!r}: a value is listed twice.")
    field_spec = next(spec for spec in fields(HyperParameters) if spec.name == name)
    for value in values:
        try:
            _check_field(field_spec, value)
        except HyperParameterError as error:
            raise SweepError(f"cannot vary {name} over {list(values)!r}: {error}") from None


def parse_vary(text: str) -> tuple[str, tuple | Range]:
    """'learning_rate=1e-3,1e-4' -> ('learning_rate', (0.001, 0.0001)); 'dropout_rate=0.1..0.5' -> a Range."""
    name, separator, values_text = text.partition("=")
    name = name.strip().replace("-", "_")
    specs = field_specs()
    if not separator or not values_text.strip():
        raise SweepError(f"{text!r}: expected NAME=VALUE,VALUE,... or NAME=LOW..HIGH, "
                         "e.g. learning_rate=1e-3,1e-4 or dropout_rate=0.1..0.5.")
    if name not in specs:
        raise SweepError(f"{text!r}: {name!r} is not a hyperparameter; expected one of: "
                         f"{', '.join(n for n in specs if n not in NOT_SWEPT)}.")
    kind = specs[name]["type"]
    if ".." in values_text:
        low, _, high = values_text.partition("..")
        return name, Range(*(_parse_value(name, kind, part, text) for part in (low, high)))
    return name, tuple(_parse_value(name, kind, part, text) for part in values_text.split(","))


def _parse_value(name: str, kind: str, part: str, text: str) -> Any:
    part = part.strip()
    try:
        if kind == "int":
            return int(part)
        if kind == "float":
            return float(part)
        if kind == "bool":
            if part.lower() in ("true", "false"):
                return part.lower() == "true"
            raise ValueError(part)
        return part
    except ValueError:
        raise SweepError(f"{text!r}: {part!r} is not a {kind} value for {name}.") from None


# ---- from a trial's values to our hyperparameters ----------------------------------------------------
def swept_values(values: dict[str, Any]) -> dict[str, Any]:
    """A trial's values without Keras Tuner's own bookkeeping entries (Hyperband's 'tuner/epochs', …)."""
    return {name: value for name, value in values.items() if not name.startswith("tuner/")}


def trial_hyperparameters(spec: SweepSpec, values: dict[str, Any]) -> HyperParameters:
    """The base preset with a trial's values, on the sweep's subset and epochs (Hyperband sets its own)."""
    epochs = int(values.get("tuner/epochs", spec.epochs_per_trial))
    return spec.base.with_changes(**swept_values(values), epochs=epochs, train_subset_size=spec.subset_size)


def retrain_hyperparameters(spec: SweepSpec, values: dict[str, Any]) -> HyperParameters:
    """A trial's values with the base preset's full-data settings (its epochs, all training images)."""
    return spec.base.with_changes(**swept_values(values))


# ---- the tuner --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrialRecord:
    trial_id: str
    values: dict
    val_accuracy: float | None
    status: str  # as TrialEnd's: COMPLETED_TRIAL, FAILED_TRIAL, … (Keras Tuner's status in our words)
    epochs: int | None = None
    seconds: float | None = None


@dataclass
class SweepResult:
    trials: list[TrialRecord] = field(default_factory=list)
    best: TrialRecord | None = None
    stopped_by_user: bool = False
    stopped_by_time_limit: bool = False
    directory: Path | None = None


def current_tuner_id() -> str:
    """This process's part in a sweep, from Keras Tuner's KERASTUNER_TUNER_ID: 'local' (alone), 'chief' or
    'worker-…'."""
    return os.environ.get(DISTRIBUTED_VARIABLES[0], "local")


def distributed_environment(role: str, oracle_ip: str, oracle_port: int, worker_id: str | None = None) -> dict:
    """The KERASTUNER_* variables for the chief ('chief') or a worker ('worker', with an id)."""
    if role not in ("chief", "worker"):
        raise SweepError(f"role={role!r}: expected 'chief' or 'worker'.")
    if not 1 <= int(oracle_port) <= 65535:
        raise SweepError(f"oracle port {oracle_port!r}: expected a TCP port number 1-65535, e.g. 8000.")
    tuner_id = "chief" if role == "chief" else f"worker-{worker_id or os.getpid()}"
    if role == "worker" and "chief" in tuner_id:
        raise SweepError(f"worker id {worker_id!r} contains 'chief', which makes Keras Tuner treat it as the chief; "
                         "pick another id.")
    return dict(zip(DISTRIBUTED_VARIABLES, (tuner_id, oracle_ip, str(int(oracle_port))), strict=True))
