"""Progress lines, durations, summaries and smoothing shown to people."""

import numpy as np
import pytest

from fmnist_core.events import BatchEnd
from fmnist_core.hyperparameters import preset
from fmnist_core.jobs import RUN, JobSnapshot, JobState
from fmnist_core.reporting import (
    batch_values,
    epochs_trained,
    exponential_moving_average,
    format_duration,
    outcome_text,
    percentages_apart,
    progress_fraction,
    progress_text,
    summarize,
)


def _snapshot(**changes):
    values = dict(job_id="j", kind=RUN, run_name="r", owner="o", state=JobState.TRAINING, submitted_at=0.0,
                  started_at=0.0, last_batch=None, stop_requested=False, stopped_by_time_limit=False, error=None,
                  hyperparameters=preset("quick"))
    return JobSnapshot(**{**values, **changes})


BATCH = BatchEnd(epoch=2, batch=50, batches_per_epoch=100, epochs=4, loss=0.5, accuracy=0.8,
                 images_per_second=2345.6, elapsed_seconds=61, eta_seconds=125)


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0 s"), (42, "42 s"), (185, "3 min 05 s"), (3720, "1 h 02 min")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_progress_counts_batches_over_all_planned_epochs():
    assert progress_fraction(_snapshot(last_batch=BATCH)) == pytest.approx(150 / 400)
    assert progress_fraction(_snapshot()) == 0.0
    assert progress_fraction(_snapshot(state=JobState.FINISHED, last_batch=BATCH)) == 1.0


def test_progress_text_names_epoch_batch_speed_and_eta():
    assert progress_text(_snapshot(last_batch=BATCH)) == (
        "Epoch 2/4 · batch 50/100 · 2,346 images/s · ETA 2 min 05 s"
    )
    assert progress_text(_snapshot(last_batch=BATCH, stop_requested=True)).endswith("stopping after this batch…")
    assert progress_text(_snapshot(state=JobState.STARTING)).startswith("Preparing")
    assert "evaluating on the test set" in progress_text(_snapshot(state=JobState.EVALUATING, last_batch=BATCH))


def test_summary_names_the_architecture_and_training():
    text = summarize(preset("best"))
    assert text.startswith("3x2 conv 32-64-128 k3, dense 512, adam lr 0.002, batch 128, 40 epochs")
    assert "augment" in text and "cosine lr" in text and "dropout 0.4" in text and "bfloat16" in text
    assert "bfloat16" not in summarize(preset("seed-000"))


def test_moving_average_is_debiased_and_smooths():
    assert exponential_moving_average([5.0, 5.0, 5.0]) == pytest.approx([5.0, 5.0, 5.0])  # no pull towards 0
    noisy = np.tile([0.0, 1.0], 200)
    smoothed = exponential_moving_average(noisy, 0.9)
    assert smoothed[-50:].std() < 0.1 * noisy.std() and smoothed[-1] == pytest.approx(0.5, abs=0.06)
    assert exponential_moving_average([], 0.9).size == 0
    with pytest.raises(ValueError, match="smoothing=1.0"):
        exponential_moving_average([1.0], 1.0)


def test_batch_values_undo_the_running_mean_of_each_epoch():
    batches_per_epoch, losses = 4, np.array([[4.0, 2.0, 3.0, 1.0], [2.0, 1.0, 1.0, 0.5]])
    accuracies = np.array([[0.1, 0.3, 0.2, 0.4], [0.5, 0.6, 0.7, 0.8]])
    points = [(epoch + (batch + 1) / batches_per_epoch, losses[epoch, : batch + 1].mean(),
               accuracies[epoch, : batch + 1].mean()) for epoch in range(2) for batch in range(4)]
    values = batch_values(points, batches_per_epoch)
    np.testing.assert_allclose(values[:, 1], losses.ravel())
    np.testing.assert_allclose(values[:, 2], accuracies.ravel())
    np.testing.assert_allclose(values[:, 0], [p[0] for p in points])
    thinned = batch_values(points[1::2], batches_per_epoch)  # batches 2 and 4 of each epoch kept
    np.testing.assert_allclose(thinned[:, 1], [3.0, 2.0, 1.5, 0.75])  # means over batches 1-2 and 3-4
    assert batch_values([], batches_per_epoch).shape == (0, 3)


def test_an_epoch_cut_short_by_a_stop_is_called_partial_not_counted_as_one():
    cut = BatchEnd(epoch=1, batch=23, batches_per_epoch=422, epochs=8, loss=1.0, accuracy=0.6,
                   images_per_second=900, elapsed_seconds=8, eta_seconds=0)
    history = ({"epoch": 1, "complete": False},)
    assert epochs_trained(history, cut) == "0 epochs and 23 of 422 batches of epoch 1"
    assert epochs_trained(({"epoch": 1, "complete": True}, {"epoch": 2, "complete": True})) == "2 epochs"
    assert epochs_trained(({"epoch": 1, "complete": True}, {"epoch": 2, "complete": False})) == (
        "1 epoch and part of epoch 2")
    stopped = _snapshot(state=JobState.STOPPED, epochs=history, last_batch=cut)
    assert progress_text(stopped) == "Stopped early by request after 0 epochs and 23 of 422 batches of epoch 1 in 8 s."
    finished = _snapshot(state=JobState.FINISHED, epochs=({"epoch": 1, "complete": True},), last_batch=BATCH)
    assert outcome_text(finished) == "Finished after 1 epoch in 1 min 01 s."


@pytest.mark.parametrize(("below", "threshold", "shown"), [
    (0.116, 0.3963, ("11.6%", "39.6%")),  # as the bars show them
    (0.3951, 0.3963, ("39.5%", "39.6%")),
    (0.3958, 0.3963, ("39.58%", "39.63%")),  # one decimal would read 39.6% twice
    (0.39601, 0.3963, ("39.60%", "39.63%")),
    (0.396299, 0.3963, ("39.62%", "39.63%")),  # two decimals alike too: rounded down and up
    (0.39629999, 0.3963, ("39.62%", "39.63%")),
])
def test_a_probability_under_the_threshold_never_reads_the_same_as_it(below, threshold, shown):
    assert percentages_apart(below, threshold) == shown


def test_a_run_stopped_by_the_time_limit_says_the_servers_limit_when_given():
    capped = _snapshot(state=JobState.STOPPED, stopped_by_time_limit=True, epochs=({"epoch": 1, "complete": True},),
                       last_batch=BATCH)
    assert outcome_text(capped).startswith("Stopped at the time limit after ")
    assert outcome_text(capped, 0.05).startswith(
        "Stopped at the server's time limit of 0.05 minutes of training (the best weights so far were kept) after ")
