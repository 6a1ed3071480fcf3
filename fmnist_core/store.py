"""The model store: one folder per saved model, holding `model.keras` and a JSON card.

Saves are atomic: everything is written into a hidden temporary folder that is renamed into place
only when complete, so a crash mid-save never leaves half a model nor touches an existing one.
Folder names are slugs the store makes from a run name; no path from a user is ever opened.
Models load with Keras `safe_mode` on and no pickle.
"""

from __future__ import annotations

import json
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

from .hyperparameters import HyperParameterError, HyperParameters

MODELS_DIR = Path(os.environ.get("FMNIST_MODELS_DIR", Path(__file__).resolve().parent.parent / "models"))
DEFAULT_MODEL = "default"
MODEL_FILE = "model.keras"
CARD_FILE = "card.json"
CARD_FORMAT = 1
_TEMPORARY_PREFIX = ".tmp-"
_STALE_TEMPORARY_SECONDS = 3600
_ARCHIVE_ENTRIES = {"config.json", "model.weights.h5"}  # what every Keras 3 `.keras` file holds


class ModelStoreError(OSError):
    """Saving, loading or deleting a model failed; the message says which and what to do."""


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
    def is_default(self) -> bool:
        return self.name == DEFAULT_MODEL


def slugify(run_name: str, max_length: int = 48) -> str:
    """A safe folder name from any text: lowercase letters, digits and single dashes; never empty."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(run_name).lower()).strip("-")[:max_length].strip("-")
    return slug or "run"


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
    """Saved models under `root` (default: the repository's `models/`, or $FMNIST_MODELS_DIR)."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else MODELS_DIR
        self._lock = threading.Lock()

    # ---- saving ---------------------------------------------------------------------------------
    def save(self, model, card: dict[str, Any], run_name: str) -> SavedModel:
        """Save `model` (an inference copy, without optimizer state) and its card under a new folder."""
        slug = slugify(run_name)
        if slug == DEFAULT_MODEL:
            slug = f"run-{slug}"  # the shipped model's folder is never taken by a run
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            temporary = self.root / f"{_TEMPORARY_PREFIX}{slug}-{uuid.uuid4().hex[:8]}"
            temporary.mkdir()
        except OSError as error:
            raise ModelStoreError(
                f"cannot create a folder in {self.root} to save {run_name!r} ({error.strerror or error}). "
                "Check that the folder exists, is writable and the disk has space."
            ) from error
        try:
            model.save(temporary / MODEL_FILE)
            _fsync_file(temporary / MODEL_FILE)
            _write_file(temporary / CARD_FILE, json.dumps(card, indent=2, sort_keys=True).encode())
            _fsync_folder(temporary)
            with self._lock:
                final = self._rename_into_place(temporary, slug)
        except BaseException as error:
            shutil.rmtree(temporary, ignore_errors=True)
            if isinstance(error, OSError):
                raise ModelStoreError(
                    f"saving {run_name!r} into {self.root} failed ({error.strerror or error}); nothing was "
                    "written and no other model was touched. Free some disk space or fix the folder's "
                    "permissions, then train again."
                ) from error
            raise
        return self._read(final)

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
        raise ModelStoreError(f"too many models named {slug!r} in {self.root}; delete some or pick another name.")

    # ---- reading --------------------------------------------------------------------------------
    def _read(self, folder: Path) -> SavedModel:
        """A model folder's card, checked; raises ModelStoreError saying what is wrong with it."""
        model_file, card_file = folder / MODEL_FILE, folder / CARD_FILE
        if not card_file.is_file():
            raise ModelStoreError(f"{folder}: no {CARD_FILE}")
        if not model_file.is_file() or not zipfile.is_zipfile(model_file):
            raise ModelStoreError(f"{folder}: {MODEL_FILE} is missing or not a Keras archive")
        try:  # the archive's table of contents only: cheap enough for every listing
            with zipfile.ZipFile(model_file) as archive:
                missing = sorted(_ARCHIVE_ENTRIES - set(archive.namelist()))
        except (OSError, zipfile.BadZipFile) as error:
            raise ModelStoreError(f"{folder}: {MODEL_FILE} cannot be read ({error})") from error
        if missing:
            raise ModelStoreError(f"{folder}: {MODEL_FILE} is not a complete Keras archive (no {', '.join(missing)})")
        try:
            card = json.loads(card_file.read_text())
            HyperParameters.from_dict(card["hyperparameters"])
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ModelStoreError(f"{folder}: {CARD_FILE} is not valid JSON ({error})") from error
        except (KeyError, TypeError, HyperParameterError) as error:
            raise ModelStoreError(f"{folder}: {CARD_FILE} has no valid hyperparameters ({error})") from error
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
        raise ModelStoreError(f"no saved model named {name!r} in {self.root} (saved models: {known}).")

    def load_model(self, name: str):
        """Load a saved model with Keras safe_mode on; raises ModelStoreError naming the folder if it fails."""
        import keras

        saved = self.get(name)
        try:
            model = keras.saving.load_model(saved.path / MODEL_FILE, compile=False, safe_mode=True)
        except Exception as error:  # noqa: BLE001 - Keras raises many types for a damaged archive
            raise ModelStoreError(
                f"{saved.path / MODEL_FILE} could not be loaded ({type(error).__name__}: {error}). "
                "The file is damaged; delete this model and train it again."
            ) from error
        if tuple(model.input_shape[1:]) != (28, 28) or tuple(model.output_shape[1:]) != (10,):
            raise ModelStoreError(
                f"{saved.path / MODEL_FILE}: takes {model.input_shape} and gives {model.output_shape}, "
                "expected (None, 28, 28) images and 10 class probabilities."
            )
        return model

    def delete(self, name: str) -> None:
        """Delete a saved run; the shipped default model cannot be deleted."""
        if name == DEFAULT_MODEL:
            raise ModelStoreError("the shipped default model cannot be deleted.")
        saved = self.get(name)
        trash = saved.path.with_name(f"{_TEMPORARY_PREFIX}deleted-{saved.name}-{uuid.uuid4().hex[:8]}")
        os.rename(saved.path, trash)  # vanishes from listings at once, even if the removal below is slow
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
