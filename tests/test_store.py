"""The model store: round trip, atomic saves that survive crashes, broken folders, safe names."""

import errno
import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fmnist_core import store as store_module
from fmnist_core.hyperparameters import preset
from fmnist_core.job_queue import JobQueue
from fmnist_core.jobs import RUN, SWEEP
from fmnist_core.model import build_model
from fmnist_core.ownership import NotYoursError, Visitor
from fmnist_core.settings import Settings, SettingsError
from fmnist_core.store import (
    CARD_FILE,
    DEFAULT_MODEL,
    MODEL_FILE,
    TEST_PROBABILITIES_FILE,
    ModelStore,
    ModelStoreError,
    StoreFullError,
    slugify,
)
from fmnist_core.sweep import SweepSpec

HP = preset("seed-004")


@pytest.fixture(scope="module")
def model():
    return build_model(HP)


ANYONE = Visitor("any visitor")  # may delete models without an owner on a server without an operator


def card(**extra):
    return {"hyperparameters": HP.to_dict(), "test_accuracy": 0.5, **extra}


def test_save_and_load_round_trip(tmp_path, model, dataset):
    store = ModelStore(tmp_path)
    saved = store.save(model, card(name="first run"), "First run!")
    assert saved.name == "first-run" and saved.path == tmp_path / "first-run"
    assert saved.hyperparameters == HP and saved.card["name"] == "first run"
    loaded = store.load_model(saved.name)
    images = dataset.test_images[:16]
    np.testing.assert_allclose(loaded(images, training=False), model(images, training=False), rtol=1e-6, atol=1e-7)


def test_same_name_twice_gets_a_new_folder(tmp_path, model):
    store = ModelStore(tmp_path)
    first, second = store.save(model, card(), "run"), store.save(model, card(), "run")
    assert (first.name, second.name) == ("run", "run-2")
    assert [m.name for m in store.list_models()[0]] == ["run-2", "run"]


@pytest.mark.parametrize("name", ["../../etc/passwd", "/tmp/evil", "..", "", "a/../../b", "C:\\Windows", "default"])
def test_run_names_cannot_escape_the_store_or_take_the_default(tmp_path, model, name):
    store = ModelStore(tmp_path / "models")
    saved = store.save(model, card(), name)
    assert saved.path.parent == tmp_path / "models"
    assert saved.name != DEFAULT_MODEL and "/" not in saved.name and ".." not in saved.name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_slugify_examples():
    assert slugify("Quick run #3 (batch 128)") == "quick-run-3-batch-128"
    assert slugify("../..") == "run"
    assert len(slugify("x" * 500)) == 48


def test_failed_save_leaves_nothing_and_names_the_cause(tmp_path, model, monkeypatch):
    store = ModelStore(tmp_path)
    existing = store.save(model, card(), "keep-me")

    def disk_full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module, "_write_file", disk_full)
    with pytest.raises(ModelStoreError, match=r"saving 'doomed' .* failed \(No space left on device\); nothing was"):
        store.save(model, card(), "doomed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep-me"]
    assert store.load_model(existing.name) is not None


def test_unwritable_store_gives_a_clear_message(tmp_path, model):
    target = tmp_path / "models"
    target.write_text("a file where the folder should be")
    with pytest.raises(ModelStoreError, match=r"cannot create a folder in the model store to save 'x'"):
        ModelStore(target).save(model, card(), "x")


def test_a_save_killed_midway_is_invisible_and_cleaned_up_later(tmp_path, model):
    store = ModelStore(tmp_path)
    store.save(model, card(), "good")
    partial = tmp_path / ".tmp-killed-1234abcd"
    partial.mkdir()
    (partial / "model.keras").write_bytes(b"PK\x03\x04 half a zip")
    models, warnings = store.list_models()
    assert [m.name for m in models] == ["good"] and warnings == []
    assert partial.exists()  # could still be a save in progress
    old = time.time() - 2 * 3600
    os.utime(partial, (old, old))
    store.list_models()
    assert not partial.exists()


def test_broken_folders_are_skipped_with_a_warning_naming_them(tmp_path, model):
    store = ModelStore(tmp_path)
    store.save(model, card(), "good")
    (tmp_path / "no-card").mkdir()
    (tmp_path / "bad-json").mkdir()
    (tmp_path / "bad-json" / "card.json").write_text("{not json")
    (tmp_path / "bad-json" / "model.keras").write_bytes(b"")
    (tmp_path / "bad-hparams").mkdir()
    (tmp_path / "bad-hparams" / "card.json").write_text(json.dumps({"hyperparameters": {"epochs": -1}}))
    with zipfile.ZipFile(tmp_path / "bad-hparams" / "model.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    models, warnings = store.list_models()
    assert [m.name for m in models] == ["good"]
    assert len(warnings) == 3
    joined = "\n".join(warnings)
    for name in ("no-card", "bad-json", "bad-hparams"):
        assert name in joined


def test_a_damaged_model_file_fails_to_load_with_a_clear_message(tmp_path, model):
    store = ModelStore(tmp_path)
    saved = store.save(model, card(), "damaged")
    with zipfile.ZipFile(saved.path / "model.keras", "w") as archive:
        archive.writestr("config.json", "{\"class_name\": \"Nope\"}")
        archive.writestr("model.weights.h5", b"not HDF5")
    with pytest.raises(ModelStoreError, match=r"damaged.*model.keras could not be loaded"):
        store.load_model("damaged")


def test_unknown_names_are_refused(tmp_path, model):
    store = ModelStore(tmp_path)
    store.save(model, card(), "good")
    with pytest.raises(ModelStoreError, match=r"no saved model named '\.\./good'"):
        store.load_model("../good")


def test_only_its_owner_or_the_operator_may_delete_a_model_whoever_calls_the_store(tmp_path, model):
    store = ModelStore(tmp_path)
    store.save(model, card(owner="alice-key"), "alices")
    store.save(model, card(), "from-the-command-line")
    with pytest.raises(NotYoursError, match="'alices' is not yours to delete: another visitor trained it"):
        store.delete("alices", Visitor("mallory-key"))
    with pytest.raises(NotYoursError, match="only the operator may delete such models"):
        store.delete("from-the-command-line", Visitor("mallory-key", operator_configured=True))
    assert sorted(saved.name for saved in store.list_models()[0]) == ["alices", "from-the-command-line"]
    store.delete("alices", Visitor("alice-key"))
    store.delete("from-the-command-line", Visitor("anyone", is_operator=True, operator_configured=True))
    assert store.list_models()[0] == []


def test_delete_removes_a_run_but_never_the_default(tmp_path, model):
    store = ModelStore(tmp_path)
    store.save(model, card(), "temporary")
    (tmp_path / DEFAULT_MODEL).mkdir()
    with pytest.raises(ModelStoreError, match="shipped default model cannot be deleted"):
        store.delete(DEFAULT_MODEL, ANYONE)
    store.delete("temporary", ANYONE)
    assert not (tmp_path / "temporary").exists()


# ---- what a stranger might try, or a crash might leave -------------------------------------------------
def test_corrupted_and_partial_folders_beside_good_models_are_named_and_the_rest_still_load(tmp_path, model):
    store = ModelStore(tmp_path)
    good = store.save(model, card(), "good")
    whole = (good.path / "model.keras").read_bytes()
    for name in ("truncated", "no-weights", "empty-model", "no-model"):
        shutil.copytree(good.path, tmp_path / name)
    (tmp_path / "truncated" / "model.keras").write_bytes(whole[: len(whole) // 2])  # a copy cut short
    with zipfile.ZipFile(good.path / "model.keras") as source, \
            zipfile.ZipFile(tmp_path / "no-weights" / "model.keras", "w") as target:
        target.writestr("config.json", source.read("config.json"))  # a zip written without its weights
    (tmp_path / "empty-model" / "model.keras").write_bytes(b"")
    (tmp_path / "no-model" / "model.keras").unlink()
    models, warnings = store.list_models()
    assert [m.name for m in models] == ["good"] and len(warnings) == 4
    for name, reason in [("truncated", "not a Keras archive"), ("no-weights", "no model.weights.h5"),
                         ("empty-model", "not a Keras archive"), ("no-model", "missing")]:
        assert any(f"model: {name}: model.keras" in warning and reason in warning for warning in warnings), name
    assert not any(str(tmp_path) in warning for warning in warnings)  # visitors never see the server's paths
    assert store.load_model("good").output_shape == (None, 10)


def test_a_model_that_would_run_code_when_loaded_is_refused_by_safe_mode(tmp_path, model):
    import keras

    inputs = keras.Input((28, 28))
    doubled = keras.layers.Lambda(lambda images: images * 2.0)(inputs)  # arbitrary Python in the archive
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(doubled))
    store = ModelStore(tmp_path)
    store.save(keras.Model(inputs, outputs), card(), "smuggled")
    with pytest.raises(ModelStoreError, match=r"smuggled/model.keras could not be loaded \(ValueError: .*Lambda"):
        store.load_model("smuggled")


@pytest.mark.parametrize("failure", [errno.EACCES, errno.ENOSPC, errno.EROFS])
def test_a_failing_rename_into_place_leaves_nothing_half_written(tmp_path, model, monkeypatch, failure):
    store = ModelStore(tmp_path)
    store.save(model, card(), "keep-me")

    def refuse(source, target):
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(store_module.os, "rename", refuse)
    with pytest.raises(ModelStoreError, match=rf"saving 'doomed' .* failed \({os.strerror(failure)}\)"):
        store.save(model, card(), "doomed")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep-me"]
    assert store.load_model("keep-me").output_shape == (None, 10)


def test_the_code_never_unpickles_nor_loads_a_model_outside_the_store():
    repository = Path(__file__).resolve().parent.parent
    paths = [*(repository / "fmnist_core").glob("*.py"), *(repository / "views").glob("*.py"),
             repository / "streamlit_app.py"]
    sources = {path: path.read_text() for path in paths}
    for path, text in sources.items():
        for forbidden in ("import pickle", "allow_pickle=True", "safe_mode=False", "enable_unsafe_deserialization"):
            assert forbidden not in text, f"{path.name} uses {forbidden}"
        # Every model is loaded by ModelStore.load_model, from a folder it listed; exports are written by export.py
        # and read back by runtimes.py only from the folder this process just wrote them to, to check or serve them.
        if path.name not in ("store.py", "export.py", "runtimes.py"):
            for loader in ("saving.load_model", "models.load_model", "load_weights(", "tf.saved_model"):
                assert loader not in text, f"{path.name} loads a model itself ({loader})"
    assert "safe_mode=True" in sources[repository / "fmnist_core" / "store.py"]
    assert "safe_mode=False" not in sources[repository / "fmnist_core" / "runtimes.py"]


# ---- strangers and faults, round two (#19) --------------------------------------------------------------
@pytest.mark.parametrize(("field", "value"), [
    ("test_accuracy", "n/a"), ("history", 5), ("history", [{"accuracy": "high"}]), ("created", 20261126),
    ("parameter_count", 1.5), ("train_seconds", None), ("preset", ["best"]), ("unsure_below", 7),
    ("class_names", ["one"]), ("per_class", "all good"), ("test_accuracy", True),
])
def test_a_card_field_of_the_wrong_type_skips_that_folder_with_a_warning_naming_the_field(
        tmp_path, model, field, value):
    store = ModelStore(tmp_path)
    store.save(model, card(), "good")
    odd = store.save(model, card(), "odd")
    written = json.loads((odd.path / "card.json").read_text())
    (odd.path / "card.json").write_text(json.dumps({**written, field: value}))
    models, warnings = store.list_models()
    assert [m.name for m in models] == ["good"]
    assert len(warnings) == 1 and "odd: card.json" in warnings[0] and repr(field) in warnings[0]


def test_a_card_that_is_not_an_object_is_skipped(tmp_path, model):
    store = ModelStore(tmp_path)
    odd = store.save(model, card(), "odd")
    (odd.path / "card.json").write_text("[1, 2, 3]")
    assert store.list_models()[0] == [] and "expected an object" in store.list_models()[1][0]


def test_an_unreadable_folder_is_skipped_with_a_warning_when_the_server_is_not_root(tmp_path, model):
    # root reads any folder, so as root the listing runs without the capabilities that bypass permissions
    # (util-linux's setpriv), as a server run by an ordinary user would
    import subprocess
    import sys

    store = ModelStore(tmp_path)
    store.save(model, card(), "good")
    locked = store.save(model, card(), "locked")
    locked.path.chmod(0)
    code = ("import json, sys; from fmnist_core.store import ModelStore; "
            "models, warnings = ModelStore(sys.argv[1]).list_models(); "
            "print(json.dumps([[m.name for m in models], warnings]))")
    drop = "-dac_override,-dac_read_search"
    unprivileged = ["setpriv", f"--inh-caps={drop}", f"--ambient-caps={drop}", f"--bounding-set={drop}"]
    repository = Path(__file__).resolve().parent.parent
    try:
        completed = subprocess.run([*(unprivileged if os.geteuid() == 0 else []), sys.executable, "-c", code,
                                    str(tmp_path)], capture_output=True, text=True, cwd=repository, check=True)
    finally:
        locked.path.chmod(0o755)  # so that pytest can clean up
    names, warnings = json.loads(completed.stdout)
    assert names == ["good"]
    assert len(warnings) == 1 and "locked: cannot be read (Permission denied)" in warnings[0]


def test_delete_acts_on_the_model_the_user_saw_not_on_a_new_one_with_its_name(tmp_path, model):
    store = ModelStore(tmp_path)
    seen = store.save(model, card(created="2026-11-26T04:00:00+00:00"), "shared").identity
    store.delete("shared", ANYONE)  # another visitor deletes it ...
    store.save(model, card(created="2026-11-26T04:05:00+00:00"), "shared")  # ... and a third saves a new one
    with pytest.raises(ModelStoreError, match="no longer the model you chose"):
        store.delete("shared", ANYONE, identity=seen)
    assert store.get("shared").card["created"] == "2026-11-26T04:05:00+00:00"
    store.delete("shared", ANYONE, identity=store.get("shared").identity)
    assert not (tmp_path / "shared").exists()


def test_two_deletes_of_one_model_at_once_give_one_deletion_and_one_clear_refusal(tmp_path, model):
    import threading

    store = ModelStore(tmp_path)

    def delete(barrier: threading.Barrier, outcomes: list[str]) -> None:
        barrier.wait()
        try:
            store.delete("contested", ANYONE)
            outcomes.append("deleted")
        except ModelStoreError as error:
            outcomes.append(str(error))
        except BaseException as error:  # noqa: BLE001 - any other exception is the failure this test looks for
            outcomes.append(f"unexpected {type(error).__name__}: {error}")

    for attempt in range(20):
        store.save(model, card(), "contested")
        barrier, outcomes = threading.Barrier(2), []
        threads = [threading.Thread(target=delete, args=(barrier, outcomes)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        refusals = [outcome for outcome in outcomes if outcome != "deleted"]
        assert len(outcomes) == 2 and len(refusals) == 1 and "already gone" in refusals[0], (attempt, outcomes)


def test_a_full_store_refuses_a_save_and_says_how_to_make_room(tmp_path, model):
    ModelStore(tmp_path).save(model, card(), "first")
    one_run = ModelStore.from_settings(Settings(models_dir=tmp_path, max_saved_runs=1))
    with pytest.raises(StoreFullError, match=r"1 saved runs.*allows 1 runs.*Delete saved runs.*FMNIST_MAX_SAVED_RUNS"):
        one_run.save(model, card(), "second")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first"]
    no_megabytes = ModelStore.from_settings(Settings.from_environment(
        {"FMNIST_MAX_SAVED_RUNS": "5", "FMNIST_MAX_STORE_MB": "0"}, models_dir=tmp_path))
    with pytest.raises(StoreFullError, match="0 MB"):
        no_megabytes.save(model, card(), "second")
    assert ModelStore(tmp_path).save(model, card(), "second").name == "second"


def test_a_mistyped_limit_is_refused_naming_the_variable_and_never_lifts_the_cap():
    for variable, text in (("FMNIST_MAX_STORE_MB", "not a number"), ("FMNIST_MAX_SAVED_RUNS", "-3"),
                           ("FMNIST_CONCURRENT_JOBS", "0"), ("FMNIST_MAX_TRAIN_MINUTES", "nan")):
        with pytest.raises(SettingsError, match=variable if "MB" in variable else "expected a number") as error:
            Settings.from_environment({variable: text})
        assert "leave it unset for the default" in str(error.value)


def test_room_is_reserved_for_runs_in_the_queue_so_a_run_allowed_to_start_is_saved(tmp_path, model):
    """Two runs queued with room for one more saved run: the second is refused at submit, not after training; the
    first, allowed to start, is saved even if the store filled up meanwhile (room kept for it)."""
    settings = Settings(models_dir=tmp_path, max_saved_runs=1)
    store, queue = ModelStore.from_settings(settings), JobQueue.from_settings(settings)
    hp = preset("seed-004")
    queue.submit(RUN, "first", "alice", hyperparameters=hp, store=store)
    with pytest.raises(StoreFullError, match="room kept for 1 queued or training"):
        queue.submit(RUN, "second", "bob", hyperparameters=hp, store=store)
    queue.submit(SWEEP, "a sweep saves no model", "bob", spec=SweepSpec(vary=(("learning_rate", (0.001, 0.01)),)),
                 store=store)
    ModelStore(tmp_path).save(model, card(), "saved by the command line meanwhile")
    assert store.save(model, card(), "first", room_reserved=True).name == "first"


def test_the_shipped_model_does_not_count_against_the_limits(tmp_path, model):
    store = ModelStore.from_settings(Settings(models_dir=tmp_path, max_saved_runs=1))
    shutil.copytree(store.save(model, card(), "x").path, tmp_path / DEFAULT_MODEL)
    store.delete("x", ANYONE)
    assert store.usage()[0] == 0
    store.save(model, card(), "only-run")


def test_test_probabilities_kept_beside_a_model_round_trip_and_damaged_ones_are_ignored(tmp_path, model):
    store = ModelStore(tmp_path)
    probabilities = np.random.default_rng(0).dirichlet(np.ones(10), size=50).astype(np.float32)
    saved = store.save(model, card(), "scored", test_probabilities=probabilities)
    np.testing.assert_array_equal(store.test_probabilities(saved, 50), probabilities)
    assert store.test_probabilities(saved, 10_000) is None  # for another test set: not used
    unscored = store.save(model, card(), "unscored")
    assert store.test_probabilities(unscored, 50) is None
    store.write_test_probabilities("unscored", probabilities[::-1])
    np.testing.assert_array_equal(store.test_probabilities(unscored, 50), probabilities[::-1])
    (unscored.path / TEST_PROBABILITIES_FILE).write_bytes(b"not an array")
    assert store.test_probabilities(unscored, 50) is None
    assert sorted(path.name for path in unscored.path.iterdir()) == sorted([CARD_FILE, MODEL_FILE,
                                                                           TEST_PROBABILITIES_FILE])
