"""Sweeps: the spec's validation, trial hyperparameters, a tiny Keras Tuner grid, stop, and the shared job slot."""

import pytest

from fmnist_core.events import TrialEnd
from fmnist_core.hyperparameters import preset
from fmnist_core.job_queue import JobQueue
from fmnist_core.jobs import RUN, SWEEP, JobState
from fmnist_core.settings import Settings
from fmnist_core.store import SWEEPS_FOLDER, ModelStore
from fmnist_core.sweep import (
    Range,
    SweepError,
    SweepSpec,
    parse_vary,
    retrain_hyperparameters,
    trial_hyperparameters,
)

TINY = dict(max_trials=4, epochs_per_trial=1, subset_size=1000, base_preset="softmax-regression")


def run_sweep(*args, **kwargs):
    """fmnist_core.sweep_tuner.run_sweep, imported when a test runs a sweep (it imports Keras Tuner and TensorFlow)."""
    from fmnist_core.sweep_tuner import run_sweep as run

    return run(*args, **kwargs)


@pytest.mark.parametrize(
    ("vary", "changes", "message"),
    [
        ((("learning_rat", (1e-3,)),), {}, r"cannot vary 'learning_rat': not a hyperparameter. Expected one of: "),
        ((("dropout_rate", (0.1, 0.9)),), {}, r"cannot vary dropout_rate over \[0.1, 0.9\]: dropout_rate=0.9 is "
                                               r"outside 0.0-0.8"),
        ((("optimizer", ("adam", "adagrad")),), {}, r"optimizer='adagrad': expected one of 'adam', 'sgd'"),
        ((("dropout_rate", Range(0.1, 0.5)),), {}, r"a grid needs listed values.*the random or hyperband strategy"),
        ((("epochs", (1, 2)),), {}, r"cannot vary 'epochs' in a sweep: .*budget"),
        ((("batch_size", (32, 32)),), {}, r"listed twice"),
        ((), {}, r"nothing to vary"),
        ((("batch_size", (32,)),), {"strategy": "bayesian"}, r"strategy='bayesian': expected one of grid, random"),
        ((("batch_size", (32,)),), {"subset_size": 100}, r"subset_size=100: expected 0 .* or at least 500"),
        ((("batch_size", (32,)),), {"base_preset": "huge"}, r"base preset 'huge' is unknown"),
    ],
)
def test_a_bad_spec_says_what_is_wrong(vary, changes, message):
    with pytest.raises(SweepError, match=message):
        SweepSpec(vary=vary, **changes)


def test_vary_flags_parse_to_typed_values_or_ranges():
    assert parse_vary("learning_rate=1e-3,1e-4") == ("learning_rate", (1e-3, 1e-4))
    assert parse_vary("batch-size=32,64") == ("batch_size", (32, 64))
    assert parse_vary("augment=true,false") == ("augment", (True, False))
    assert parse_vary("dropout_rate=0.1..0.5") == ("dropout_rate", Range(0.1, 0.5))
    with pytest.raises(SweepError, match=r"'3x' is not a int value for batch_size"):
        parse_vary("batch_size=32,3x")
    with pytest.raises(SweepError, match=r"expected NAME=VALUE,VALUE"):
        parse_vary("batch_size")


def test_a_trial_trains_on_the_budget_and_the_best_retrains_with_the_presets_full_data_settings():
    spec = SweepSpec(vary={"learning_rate": (1e-3, 1e-4), "num_conv_blocks": (2, 3)},
                     **{**TINY, "base_preset": "seed-004"})
    values = {"learning_rate": 1e-4, "num_conv_blocks": 2, "tuner/epochs": 1}
    trial = trial_hyperparameters(spec, values)
    assert (trial.learning_rate, trial.num_conv_blocks, trial.filters) == (1e-4, 2, (32, 64))
    assert (trial.epochs, trial.train_subset_size) == (1, 1000)
    full = retrain_hyperparameters(spec, values)
    base = preset("seed-004")
    assert (full.epochs, full.train_subset_size, full.learning_rate) == (base.epochs, 0, 1e-4)
    assert spec.grid_size() == 4 and spec.trials_at_most() == 4  # the budget (4) and the grid (4) agree
    assert SweepSpec(vary={"learning_rate": (1e-3, 1e-4)}, max_trials=6).trials_at_most() == 2  # the grid is smaller
    assert SweepSpec(vary={"dropout_rate": Range(0.1, 0.5)}, strategy="random", max_trials=6).trials_at_most() == 6


@pytest.mark.slow
def test_a_tiny_grid_runs_each_combination_once_in_the_model_store_and_reports_the_best(tmp_path, dataset):
    spec = SweepSpec(vary={"learning_rate": (1e-3, 1e-4), "dropout_rate": (0.0, 0.3)}, strategy="grid", **TINY)
    trials = []
    result = run_sweep(spec, lambda: dataset, listeners=[lambda e: isinstance(e, TrialEnd) and trials.append(e)],
                       directory=tmp_path / SWEEPS_FOLDER / "tiny")
    combinations = {(t.values["learning_rate"], t.values["dropout_rate"]) for t in trials}
    assert len(trials) == 4 and combinations == {(1e-3, 0.0), (1e-3, 0.3), (1e-4, 0.0), (1e-4, 0.3)}
    assert all(t.status == "completed" and t.epochs == 1 and 0.0 < t.val_accuracy <= 1.0 for t in trials)
    assert [record.trial_id for record in result.trials] == [t.trial_id for t in trials]
    best = max(trials, key=lambda t: t.val_accuracy)
    assert result.best.trial_id == best.trial_id and result.best.val_accuracy == pytest.approx(best.val_accuracy)
    assert (tmp_path / SWEEPS_FOLDER / "tiny" / "local" / "sweep" / "oracle.json").is_file()
    assert ModelStore(tmp_path).list_models() == ([], [])  # the tuner's folder is not a model


def test_a_stop_request_ends_the_sweep_after_the_trial_in_progress(tmp_path, dataset):
    import threading

    stop = threading.Event()
    spec = SweepSpec(vary={"batch_size": (32, 64, 128)}, **TINY)
    trials = []

    def stop_after_the_first_trial(event):
        if isinstance(event, TrialEnd):
            trials.append(event)
            stop.set()

    result = run_sweep(spec, lambda: dataset, listeners=[stop_after_the_first_trial], stop_event=stop)
    assert result.stopped_by_user and len(trials) == 1 and result.best.trial_id == trials[0].trial_id


@pytest.mark.slow
def test_a_queued_sweep_runs_in_the_worker_and_a_run_queued_meanwhile_follows_it(tmp_path, dataset):
    from test_jobs import run_next

    queue, store = JobQueue(tmp_path), ModelStore(tmp_path)
    spec = SweepSpec(vary={"learning_rate": (1e-3, 3e-3)}, **TINY)
    sweep = queue.submit(SWEEP, "sweep", "visitor-a", spec=spec)
    run = queue.submit(RUN, "after", "visitor-b", hyperparameters=preset("seed-004", train_subset_size=1000, epochs=1))
    snapshot = run_next(queue, store, dataset)
    assert snapshot.job_id == sweep.job_id and snapshot.kind == SWEEP
    assert snapshot.state == JobState.FINISHED and len(snapshot.trials) == 2 and snapshot.error is None
    assert snapshot.best.val_accuracy == max(trial.val_accuracy for trial in snapshot.trials)
    assert run_next(queue, store, dataset).job_id == run.job_id


@pytest.mark.slow
def test_a_whole_sweep_stops_at_the_server_time_limit(tmp_path, dataset):
    from test_jobs import run_next

    three_seconds = Settings(models_dir=tmp_path, max_train_minutes=3 / 60)  # 20 trials of 3 epochs take minutes
    queue = JobQueue(tmp_path)
    spec = SweepSpec(vary={"learning_rate": Range(1e-4, 1e-2)}, strategy="random", max_trials=20,
                     epochs_per_trial=3, subset_size=5000, base_preset="seed-004")
    queue.submit(SWEEP, "sweep", "visitor-a", spec=spec)
    snapshot = run_next(queue, ModelStore(tmp_path), dataset, settings=three_seconds)
    assert snapshot.state == JobState.STOPPED and snapshot.stopped_by_time_limit and len(snapshot.trials) < 20


@pytest.mark.slow
def test_hyperband_samples_a_range_within_its_budget_of_trials_and_epochs(dataset):
    spec = SweepSpec(vary={"dropout_rate": Range(0.1, 0.5)}, strategy="hyperband", max_trials=3, epochs_per_trial=3,
                     subset_size=1000, base_preset="softmax-regression")
    result = run_sweep(spec, lambda: dataset)  # Hyperband alone would run 3 one-epoch trials, then 3 more
    assert len(result.trials) == 3 and all(record.status == "completed" for record in result.trials)
    assert all(0.1 <= record.values["dropout_rate"] <= 0.5 for record in result.trials)
    assert [record.epochs for record in result.trials] == [1, 1, 1]  # the first round of its widest bracket
    assert result.best.val_accuracy == max(record.val_accuracy for record in result.trials)


@pytest.mark.slow
def test_a_one_trial_sweep_cut_by_the_time_limit_is_stopped_not_failed(dataset):
    spec = SweepSpec(vary={"learning_rate": (1e-3,)}, max_trials=1, epochs_per_trial=3, subset_size=5000,
                     base_preset="seed-004")
    result = run_sweep(spec, lambda: dataset, time_limit_seconds=2.0)  # 3 epochs of a CNN take far longer
    assert result.stopped_by_time_limit and not result.stopped_by_user
    assert [record.status for record in result.trials] == ["failed"]  # Keras Tuner's word for a stopped trial


def _grid_trials(oracle, tmp_path, lanes: list[str]) -> list[list[dict]]:
    """Ask `oracle` for trials, one per lane at a time, ending each round's trials before the next: each round's
    values (a lane that gets none, waiting or done, gives nothing)."""
    import keras_tuner

    oracle._set_project_dir(str(tmp_path / type(oracle).__name__), "grid")
    rounds = []
    while True:
        trials = [oracle.create_trial(lane) for lane in lanes]
        running = [trial for trial in trials if trial.status == keras_tuner.engine.trial.TrialStatus.RUNNING]
        if not running:
            return rounds
        rounds.append([dict(trial.hyperparameters.values) for trial in running])
        for trial in running:
            oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
            trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
            oracle.end_trial(trial)


def test_the_grid_keeps_keras_tuners_order_and_gives_each_lane_a_trial_at_once(tmp_path):
    import keras_tuner

    from fmnist_core.sweep_tuner import make_oracle, search_space

    spec = SweepSpec(vary={"learning_rate": (3e-3, 1e-3), "dropout_rate": (0.0, 0.3, 0.5)}, strategy="grid",
                     max_trials=6)
    theirs = keras_tuner.oracles.GridSearchOracle(objective=keras_tuner.Objective("val_accuracy", "max"),
                                                  hyperparameters=search_space(spec), max_trials=6)
    one_lane = [values for (values,) in _grid_trials(theirs, tmp_path, ["lane"])]
    assert [(values["learning_rate"], values["dropout_rate"]) for values in one_lane] == [
        (3e-3, 0.0), (3e-3, 0.3), (3e-3, 0.5), (1e-3, 0.0), (1e-3, 0.3), (1e-3, 0.5)]  # the last field fastest
    assert [values for (values,) in _grid_trials(make_oracle(spec), tmp_path / "ours", ["lane"])] == one_lane
    # two lanes: ours gives both a trial every round (Keras Tuner's own grid gave 2, 1, 1, 1, 1: keras-tuner 1.4.8)
    assert [len(values) for values in _grid_trials(make_oracle(spec), tmp_path / "two", ["a", "b"])] == [2, 2, 2]
    assert sum(_grid_trials(make_oracle(spec), tmp_path / "two-again", ["a", "b"]), []) == one_lane


def test_a_sweep_in_two_lanes_whose_every_trial_fails_ends_with_the_reason_and_never_hangs(tmp_path, dataset):
    """Keras Tuner's oracle lock is not released when an oracle call raises (keras-tuner 1.4.8), and its oracle
    raises at its limit of failed trials: with two lanes, the other lane then waited on the lock for ever."""
    import threading

    spec = SweepSpec(vary={"num_conv_blocks": (4,), "padding": ("valid",), "kernel_size": (5, 7)}, strategy="grid",
                     max_trials=2, base_preset="seed-000")  # the feature maps shrink to nothing: no trial can train
    ended, outcome = [], {}

    def sweep():
        try:
            run_sweep(spec, lambda: dataset, listeners=[ended.append], lanes=2)
        except Exception as error:  # noqa: BLE001 - what the test looks at
            outcome["error"] = error

    thread = threading.Thread(target=sweep, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the sweep hung"
    assert isinstance(outcome.get("error"), RuntimeError) and "all 2 trials failed" in str(outcome["error"])
    assert sorted(event.status for event in ended if isinstance(event, TrialEnd)) == ["failed", "failed"]
