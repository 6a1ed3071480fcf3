"""The model store: one folder per saved model, holding `model.keras` and a JSON card.

Saves are atomic: everything is written into a hidden temporary folder that is renamed into place
only when complete, so a crash mid-save never leaves half a model nor touches an existing one.
Folder names are slugs the store makes from a run name; no path from a user is ever opened.
Models load with Keras `safe_mode` on and no pickle.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .hyperparameters import HyperParameterError, HyperParameters
from .ownership import NotYoursError, Visitor
from .settings import Settings, setting_variable

DEFAULT_MODEL = "default"
MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
# The model's probabilities for the 10,000 test images, written where it is trained (the worker, the CLI): the
# Evaluate page scores them with numpy instead of running the model on the web server.
TEST_PROBABILITIES_FILE = "test_probabilities.npy"
CARD_FORMAT = 1
# Hidden folders of the store (dot folders are never listed as models): the job queue and the sweeps' trials, a sweep
# job's Keras Tuner folder being SWEEPS_FOLDER/<job id>.
JOBS_FOLDER = ".jobs"
SWEEPS_FOLDER = ".sweeps"
_TEMPORARY_PREFIX = ".tmp-"
_STALE_TEMPORARY_SECONDS = 3600
_ARCHIVE_ENTRIES = {"config.json", "model.weights.h5"}  # what every Keras 3 `.keras` file holds


class ModelStoreError(OSError):
    """Saving, loading or deleting a model failed; the message says which and what to do."""


class StoreFullError(ModelStoreError):
    """The store holds as many saved runs, or as many megabytes, as this server allows."""


# Saved runs (the shipped model aside) are capped, so that one visitor cannot fill the server's disk: the store's
# limits are settings (settings.py: max_saved_runs, max_store_mb), which an operator raises in the environment.
# A saved model without optimizer state takes 4 bytes a parameter and this much besides (config, archive, card).
MODEL_FILE_OVERHEAD_BYTES = 60_000


def estimated_model_bytes(parameter_count: int) -> int:
    """About what a run with `parameter_count` parameters takes in the store once saved (3.5 MB for the shipped
    model's 0.87 M parameters)."""
    return 4 * parameter_count + MODEL_FILE_OVERHEAD_BYTES


@dataclass(frozen=True)
class SavedModel:
    name: str  # the folder name, a slug
    path: Path
    card: dict[str, Any]
    modified_ns: int  # of model.keras: with the path, what identifies a cached load

    @property
    def hyperparameters(self) -> HyperParameters:
        return HyperParameters.from_dict(self.card["hyperparameters"])

    @property
    def test_accuracy(self) -> float | None:
        return self.card.get("test_accuracy")

    @property
    def unsure_below(self) -> float | None:
        """The top probability under which this model's answer is "unsure / not an item", if its card has one."""
        value = self.card.get("unsure_below")
        return value if isinstance(value, float) and 0.0 <= value <= 1.0 else None

    @property
    def created(self) -> datetime | None:
        """When the model was saved (from its card), or None for a card without a readable date."""
        try:
            return datetime.fromisoformat(self.card["created"])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def created_text(self) -> str:
        """When it was saved, as the pages write it: '2026-11-26 14:05 UTC' (or 'unknown date')."""
        return f"{self.created:%Y-%m-%d %H:%M} UTC" if self.created else "unknown date"

    @property
    def identity(self) -> tuple[str, str, int]:
        """What tells this very model apart from another saved later under the same folder name."""
        return self.name, str(self.card.get("created")), self.modified_ns

    @property
    def owner(self) -> str | None:
        """The owner key of the visitor whose run saved this model (see ownership.py); None for the shipped model
        and models trained with the CLI."""
        owner = self.card.get("owner")
        return owner if isinstance(owner, str) and owner else None

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_MODEL


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# What the pages read from a card, and what each must be when present (absent is fine: older cards lack some).
_CARD_FIELDS: dict[str, tuple[str, Any]] = {
    "name": ("a string", lambda v: isinstance(v, str)),
    "preset": ("a string or null", lambda v: v is None or isinstance(v, str)),
    "created": ("an ISO date string", lambda v: isinstance(v, str)),
    "test_accuracy": ("a number from 0 to 1 or null", lambda v: v is None or (_is_number(v) and 0 <= v <= 1)),
    "test_loss": ("a number or null", lambda v: v is None or _is_number(v)),
    "train_seconds": ("a number of seconds", lambda v: _is_number(v) and v >= 0),
    "parameter_count": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "best_epoch": ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    "unsure_below": ("a number from 0 to 1", lambda v: _is_number(v) and 0 <= v <= 1),
    "class_names": ("a list of 10 class names", lambda v: isinstance(v, list) and len(v) == 10
                    and all(isinstance(name, str) for name in v)),
    "per_class": ("a list of objects", lambda v: isinstance(v, list) and all(isinstance(row, dict) for row in v)),
    "history": ("a list of per-epoch objects of numbers", lambda v: isinstance(v, list) and all(
        isinstance(epoch, dict) and all(_is_number(x) or isinstance(x, bool) for x in epoch.values()) for epoch in v)),
}


def card_problem(card: Any) -> str | None:
    """What is wrong with a model card (in words, naming the field), or None when every field the app reads is valid."""
    if not isinstance(card, dict):
        return f"is a JSON {type(card).__name__}, expected an object"
    try:
        HyperParameters.from_dict(card.get("hyperparameters"))
    except (TypeError, HyperParameterError) as error:
        return f"has no valid hyperparameters ({error})"
    for key, (expected, valid) in _CARD_FIELDS.items():
        if key in card and not valid(card[key]):
            return f"field {key!r} is {str(card[key])[:40]!r}, expected {expected}"
    return None


def slugify(run_name: str, max_length: int = 48) -> str:
    """A safe folder name from any text: lowercase letters, digits and single dashes; never empty."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(run_name).lower()).strip("-")[:max_length].strip("-")
    return slug or "run"


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class ModelStore:
    """Saved models under `root`, at most `max_saved_runs` runs and `max_store_mb` megabytes of them (the shipped
    model aside); `ModelStore.from_settings` builds the server's."""

    def __init__(self, root: Path | str, *, max_saved_runs: int = 100, max_store_mb: int = 1000):
        self.root = Path(root)
        self.max_saved_runs, self.max_store_mb = max_saved_runs, max_store_mb
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelStore:
        """The model store `settings` describe: its folder and limits."""
        return cls(settings.models_dir, max_saved_runs=settings.max_saved_runs, max_store_mb=settings.max_store_mb)

    # ---- saving ---------------------------------------------------------------------------------
    def usage(self) -> tuple[int, int]:
        """(saved runs, bytes) in the store, the shipped model and hidden folders aside."""
        runs, size = 0, 0
        if not self.root.is_dir():
            return runs, size
        for folder in self.root.iterdir():
            if folder.name.startswith(".") or folder.name == DEFAULT_MODEL or not folder.is_dir():
                continue
            runs += 1
            size += sum(entry.stat().st_size for entry in folder.iterdir() if entry.is_file())
        return runs, size

    def check_room(self, new_bytes: int = 0, reserved_runs: int = 0, reserved_bytes: int = 0) -> None:
        """Raise StoreFullError when one more saved run of `new_bytes` would go over the server's limits, counting
        the room already reserved for runs that are queued or training (`reserved_runs`, `reserved_bytes`)."""
        runs, size = self.usage()
        runs, size = runs + reserved_runs, size + reserved_bytes
        if runs + 1 > self.max_saved_runs or size + new_bytes > self.max_store_mb * 1_000_000:
            waiting = f", and room kept for {reserved_runs} queued or training" if reserved_runs else ""
            raise StoreFullError(
                f"the model store is full: {runs - reserved_runs} saved runs, {(size - reserved_bytes) / 1e6:,.0f} "
                f"MB{waiting} (this server allows {self.max_saved_runs} runs and {self.max_store_mb:,} MB). Delete "
                f"saved runs you no longer need; an operator can raise the limits with "
                f"{setting_variable('max_saved_runs')} and {setting_variable('max_store_mb')}."
            )

    def save(self, model, card: dict[str, Any], run_name: str, room_reserved: bool = False,
             test_probabilities: np.ndarray | None = None) -> SavedModel:
        """Save `model` (an inference copy, without optimizer state; or the bytes of its .keras file, as a cluster's
        node sends it) and its card under a new folder; raises
        StoreFullError when the store is at its limits, unless the room was reserved when its job was queued (a run
        allowed to start is never thrown away at its end)."""
        if not room_reserved:
            self.check_room()
        slug = slugify(run_name)
        if slug == DEFAULT_MODEL:
            slug = f"run-{slug}"  # the shipped model's folder is never taken by a run
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            temporary = self.root / f"{_TEMPORARY_PREFIX}{slug}-{uuid.uuid4().hex[:8]}"
            temporary.mkdir()
        except OSError as error:
            raise ModelStoreError(
                f"cannot create a folder in the model store to save {run_name!r} ({error.strerror or error}). "
                "Check that the folder exists, is writable and the disk has space."
            ) from error
        try:
            if isinstance(model, bytes):
                _write_file(temporary / MODEL_FILE, model)
            else:
                model.save(temporary / MODEL_FILE)
                _fsync_file(temporary / MODEL_FILE)
            _write_file(temporary / CARD_FILE, json.dumps(card, indent=2, sort_keys=True).encode())
            if test_probabilities is not None:
                _write_file(temporary / TEST_PROBABILITIES_FILE, _npy_bytes(test_probabilities))
            _fsync_folder(temporary)
            with self._lock:
                final = self._rename_into_place(temporary, slug)
        except BaseException as error:
            shutil.rmtree(temporary, ignore_errors=True)
            if isinstance(error, OSError):
                raise ModelStoreError(
                    f"saving {run_name!r} into the model store failed ({error.strerror or error}); nothing was "
                    "written and no other model was touched. Free some disk space or fix the folder's "
                    "permissions, then train again."
                ) from error
            raise
        return self._read(final)

    def test_probabilities(self, saved: SavedModel, count: int) -> np.ndarray | None:
        """The probabilities `saved` gave the `count` test images, as written when it was saved (or by
        `write_test_probabilities`); None when there are none (or they are not for `count` images)."""
        try:
            probabilities = np.load(saved.path / TEST_PROBABILITIES_FILE, allow_pickle=False)
        except (OSError, ValueError):
            return None
        ok = probabilities.shape == (count, 10) and np.all(np.isfinite(probabilities))
        return probabilities.astype(np.float32) if ok else None

    def write_test_probabilities(self, name: str, probabilities: np.ndarray) -> None:
        """Keep a saved model's test-set probabilities beside it (written whole, then renamed into place)."""
        folder = self.get(name).path
        temporary = folder / f"{_TEMPORARY_PREFIX}{TEST_PROBABILITIES_FILE}"
        _write_file(temporary, _npy_bytes(probabilities))
        os.replace(temporary, folder / TEST_PROBABILITIES_FILE)

    def _rename_into_place(self, temporary: Path, slug: str) -> Path:
        for attempt in range(1, 1000):
            final = self.root / (slug if attempt == 1 else f"{slug}-{attempt}")
            if final.exists():
                continue
            try:
                os.rename(temporary, final)  # atomic; fails rather than merge into a folder that appeared
            except OSError:
                if final.exists():
                    continue
                raise
            _fsync_folder(self.root)
            return final
        raise ModelStoreError(f"too many models named {slug!r} in the model store; delete some or pick another name.")

    # ---- reading --------------------------------------------------------------------------------
    def _read(self, folder: Path) -> SavedModel:
        """A model folder's card, checked; raises ModelStoreError saying what is wrong with it (by folder name:
        the server's paths are never shown to visitors)."""
        try:
            return self._read_checked(folder)
        except ModelStoreError:
            raise
        except OSError as error:  # an unreadable folder or file (permissions, a vanished folder, I/O errors)
            reason = error.strerror or type(error).__name__
            raise ModelStoreError(f"{folder.name}: cannot be read ({reason})") from error

    def _read_checked(self, folder: Path) -> SavedModel:
        model_file, card_file = folder / MODEL_FILE, folder / CARD_FILE
        if not card_file.is_file():
            raise ModelStoreError(f"{folder.name}: no {CARD_FILE}")
        if not model_file.is_file() or not zipfile.is_zipfile(model_file):
            raise ModelStoreError(f"{folder.name}: {MODEL_FILE} is missing or not a Keras archive")
        try:  # the archive's table of contents only: cheap enough for every listing
            with zipfile.ZipFile(model_file) as archive:
                missing = sorted(_ARCHIVE_ENTRIES - set(archive.namelist()))
        except (OSError, zipfile.BadZipFile) as error:
            raise ModelStoreError(f"{folder.name}: {MODEL_FILE} cannot be read ({error})") from error
        if missing:
            raise ModelStoreError(
                f"{folder.name}: {MODEL_FILE} is not a complete Keras archive (no {', '.join(missing)})"
            )
        try:
            card = json.loads(card_file.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelStoreError(f"{folder.name}: {CARD_FILE} is not valid JSON ({error})") from error
        problem = card_problem(card)
        if problem:
            raise ModelStoreError(f"{folder.name}: {CARD_FILE} {problem}")
        return SavedModel(folder.name, folder, card, model_file.stat().st_mtime_ns)

    def list_models(self) -> tuple[list[SavedModel], list[str]]:
        """(models, warnings): the shipped default first, then the newest; broken folders become warnings."""
        models, warnings = [], []
        if not self.root.is_dir():
            return models, warnings
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir():
                continue
            if folder.name.startswith(_TEMPORARY_PREFIX):
                self._remove_if_stale(folder)
                continue
            if folder.name.startswith("."):
                continue
            try:
                models.append(self._read(folder))
            except ModelStoreError as error:
                warnings.append(f"Skipped a broken saved model: {error}. Delete or retrain it.")
        models.sort(key=lambda m: (not m.is_default, -m.modified_ns))
        return models, warnings

    def _remove_if_stale(self, folder: Path) -> None:
        """A temporary folder left by a crash; removed once it is clearly not a save in progress."""
        try:
            if time.time() - folder.stat().st_mtime > _STALE_TEMPORARY_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass  # another process removed or renamed it meanwhile: nothing to clean

    def get(self, name: str) -> SavedModel:
        """The saved model of that folder name; only names the store itself listed are accepted."""
        models, _ = self.list_models()
        for saved in models:
            if saved.name == name:
                return saved
        known = ", ".join(m.name for m in models) or "none"
        raise ModelStoreError(f"no saved model named {name!r} (saved models: {known}).")

    def find_by_job(self, job_id: str) -> SavedModel | None:
        """The model a queued job saved (its card records the job's id), if it was saved."""
        return next((saved for saved in self.list_models()[0] if saved.card.get("job_id") == job_id), None)

    def load_model(self, name: str):
        """Load a saved model with Keras safe_mode on; raises ModelStoreError naming the folder if it fails."""
        return self._load_network(self.get(name))

    def _load_network(self, saved: SavedModel):
        import keras

        try:
            model = keras.saving.load_model(saved.path / MODEL_FILE, compile=False, safe_mode=True)
        except Exception as error:  # noqa: BLE001 - Keras raises many types for a damaged archive
            raise ModelStoreError(
                f"{saved.name}/{MODEL_FILE} could not be loaded ({type(error).__name__}: {error}). "
                "The file is damaged; delete this model and train it again."
            ) from error
        if tuple(model.input_shape[1:]) != (28, 28) or tuple(model.output_shape[1:]) != (10,):
            raise ModelStoreError(
                f"{saved.name}/{MODEL_FILE}: takes {model.input_shape} and gives {model.output_shape}, "
                "expected (None, 28, 28) images and 10 class probabilities."
            )
        return model

    def load_classifier(self, name: str):
        """The Classifier that answers for a saved model as its card says it answers (`mirror_average`); raises
        ModelStoreError like `load_model`."""
        from .inference import Classifier
        from .model import answering_model

        saved = self.get(name)  # the folders are listed once
        network = self._load_network(saved)
        return Classifier(answering_model(network, saved.hyperparameters), network)

    def delete(self, name: str, actor: Visitor, identity: tuple[str, str, int] | None = None) -> None:
        """Delete a saved run for `actor`, who must be allowed to (ownership.py; else NotYoursError); the shipped
        default model cannot be deleted. With `identity` (a SavedModel's, as the user saw it), only that very model:
        a run saved since under the same name is refused, not deleted."""
        if name == DEFAULT_MODEL:
            raise ModelStoreError("the shipped default model cannot be deleted.")
        try:
            saved = self.get(name)
        except ModelStoreError:
            raise ModelStoreError(f"{name!r} is already gone: someone deleted it. Nothing was deleted.") from None
        refusal = actor.delete_refusal(saved.owner)
        if refusal:
            raise NotYoursError(f"{name!r} is not yours to delete: {refusal}")
        if identity is not None and saved.identity != tuple(identity):
            raise ModelStoreError(
                f"{name!r} is no longer the model you chose: another run was saved under that name since. "
                "Nothing was deleted; look at the list again and choose."
            )
        trash = saved.path.with_name(f"{_TEMPORARY_PREFIX}deleted-{saved.name}-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(saved.path, trash)  # vanishes from listings at once, even if the removal below is slow
        except FileNotFoundError:  # a delete at the same moment renamed it first
            raise ModelStoreError(f"{name!r} is already gone: someone deleted it. Nothing was deleted.") from None
        except OSError as error:
            raise ModelStoreError(f"{name!r} could not be deleted ({error.strerror or error}).") from error
        shutil.rmtree(trash, ignore_errors=True)


def make_card(result, evaluation, dataset, run_name: str, preset: str | None = None) -> dict[str, Any]:
    """The JSON card saved beside a model: how it was made and how well it does."""
    import keras
    import tensorflow as tf

    hp: HyperParameters = result.hyperparameters
    return {
        "format": CARD_FORMAT,
        "name": run_name,
        "preset": preset,
        "hyperparameters": hp.to_dict(),
        "parameter_count": hp.parameter_count(),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "stopped_by_user": result.stopped_by_user,
        "stopped_early": result.stopped_early,
        "stopped_by_time_limit": result.stopped_by_time_limit,
        "train_seconds": round(result.train_seconds, 2),
        "resumed_at_epochs": list(result.resumed_at_epochs),  # a crash or restart interrupted it at these epochs
        "unsure_below": result.unsure_below,
        "inference_precision": result.model.get_layer("logits").dtype_policy.name,  # the saved, served copy
        **evaluation.metrics(),
        "per_class": evaluation.per_class(dataset.class_names),
        "class_names": list(dataset.class_names),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "dataset_sha256": dict(dataset.sha256),
    }
