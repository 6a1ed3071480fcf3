"""What the app's pages tell a person about a run: progress lines, durations, summaries, smoothed curves.

Plain text and numpy only, so it is cheap to import and easy to test. The command line prints its own progress and
results (`TerminalProgress` and the printers in fmnist_core/cli.py) and does not use this module.
"""

from __future__ import annotations

import math

import numpy as np

from .hyperparameters import HyperParameters
from .jobs import JobSnapshot, JobState


def format_duration(seconds: float) -> str:
    """A short human duration: '42 s', '3 min 05 s', '1 h 02 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def percentages_apart(below: float, threshold: float) -> tuple[str, str]:
    """`below` and `threshold` (below < threshold, both 0 to 1) as percentages that read as different: one decimal,
    as the probability bars show them, two where one rounds both alike, and at last `below` rounded down and
    `threshold` up."""
    for digits in (1, 2):
        shown = f"{below:.{digits}%}", f"{threshold:.{digits}%}"
        if shown[0] != shown[1]:
            return shown
    return f"{math.floor(below * 10_000) / 100:.2f}%", f"{math.ceil(threshold * 10_000) / 100:.2f}%"


def summarize(hp: HyperParameters) -> str:
    """The hyperparameters that matter most, in one line."""
    extras = [
        name for name, on in (("batch norm", hp.batch_norm), ("augment", hp.augment),
                              ("mirror average", hp.mirror_average),
                              (f"dropout {hp.dropout_rate:g}", hp.dropout_rate > 0),
                              (f"{hp.lr_schedule} lr", hp.lr_schedule != "constant"),
                              ("bfloat16", hp.precision == "mixed_bfloat16"),
                              ("bfloat16 if the CPU has it", hp.precision == "auto"),
                              (f"sketches {hp.sketch_fraction:g}", hp.sketch_fraction > 0),
                              (f"non-items {hp.non_item_fraction:g}", hp.non_item_fraction > 0)) if on
    ]
    subset = f", {hp.train_subset_size:,} images" if hp.train_subset_size else ""
    if hp.family == "CNN":
        layers = (f"{hp.num_conv_blocks}x{hp.convs_per_block} conv {'-'.join(map(str, hp.filters))} "
                  f"k{hp.kernel_size}, dense {'-'.join(map(str, hp.dense_layer_units())) or 0}")
    else:
        layers = f"{hp.family} {'-'.join(map(str, hp.dense_layer_units()))}".rstrip()
    return (
        f"{layers}, {hp.optimizer} lr {hp.learning_rate:g}, "
        f"batch {hp.batch_size}, {hp.epochs} epoch{'s' if hp.epochs != 1 else ''}{subset}"
        + (f"; {', '.join(extras)}" if extras else "")
    )


def progress_fraction(snapshot: JobSnapshot) -> float:
    """How much of the planned batches are done, 0-1 (1 once the run finished normally)."""
    if snapshot.state == JobState.FINISHED:
        return 1.0
    batch = snapshot.last_batch
    if batch is None:
        return 0.0
    done = (batch.epoch - 1) * batch.batches_per_epoch + batch.batch
    return min(1.0, done / max(batch.epochs * batch.batches_per_epoch, 1))


def epochs_trained(history, last_batch=None) -> str:
    """How much a run trained, in words: '8 epochs', or '2 epochs and 23 of 422 batches of epoch 3' when a stop
    cut the last epoch short (its record has complete=False). `history` is EpochEnd records as dicts."""
    full = sum(1 for record in history if record.get("complete", True))
    text = f"{full} epoch{'s' if full != 1 else ''}"
    if history and not history[-1].get("complete", True):
        part = (f"{last_batch.batch} of {last_batch.batches_per_epoch} batches"
                if last_batch is not None and last_batch.epoch == full + 1 else "part")
        text += f" and {part} of epoch {full + 1}"
    return text


def outcome_text(snapshot: JobSnapshot, time_limit_minutes: float | None = None) -> str:
    """How an ended run ended: 'Finished after 8 epochs in 48 s.' or 'Stopped early by request after …'; with
    `time_limit_minutes`, a run stopped by the time limit says the limit and that its best weights were kept."""
    batch = snapshot.last_batch
    took = f" in {format_duration(batch.elapsed_seconds)}" if batch else ""
    limit = ("Stopped at the time limit" if time_limit_minutes is None else
             f"Stopped at the server's time limit of {time_limit_minutes:g} minutes of training (the best weights so "
             "far were kept)")
    how = limit if snapshot.stopped_by_time_limit else (
        "Stopped early by request" if snapshot.state == JobState.STOPPED else "Finished")
    return f"{how} after {epochs_trained(snapshot.epochs, batch)}{took}."


def progress_text(snapshot: JobSnapshot) -> str:
    """One line saying where the run is: epoch, batch, speed and ETA while training."""
    batch = snapshot.last_batch
    if snapshot.state == JobState.FAILED:
        return "Failed."
    if snapshot.state in (JobState.FINISHED, JobState.STOPPED):
        return outcome_text(snapshot)
    if snapshot.state == JobState.STARTING or batch is None:
        return "Preparing the data and building the model…"
    if snapshot.state == JobState.EVALUATING:
        return f"Training done in {format_duration(batch.elapsed_seconds)}; evaluating on the test set and saving…"
    line = (
        f"Epoch {batch.epoch}/{batch.epochs} · batch {batch.batch}/{batch.batches_per_epoch} · "
        f"{batch.images_per_second:,.0f} images/s · ETA {format_duration(batch.eta_seconds)}"
    )
    return line + (" · stopping after this batch…" if snapshot.stop_requested else "")


def batch_values(batch_points, batches_per_epoch: int) -> np.ndarray:
    """Per-batch (position, loss, accuracy) from the jobs' points, which hold Keras's running means over each epoch.

    The mean over batches (j, k] of an epoch is (k * mean_k - j * mean_j) / (k - j): exact for consecutive
    points, and the mean of the skipped batches where old points were thinned out.
    """
    points = np.asarray(batch_points, dtype=np.float64).reshape(-1, 3)
    values = np.empty_like(points)
    epoch_before, batch_before, sums_before = -1, 0, np.zeros(2)
    for row, (position, loss, accuracy) in enumerate(points):
        epoch = int(np.ceil(position - 1e-9))  # position = epoch - 1 + batch / batches_per_epoch, batch >= 1
        batch = int(round((position - (epoch - 1)) * batches_per_epoch))
        if epoch != epoch_before:
            epoch_before, batch_before, sums_before = epoch, 0, np.zeros(2)
        sums = batch * np.array([loss, accuracy])
        values[row] = (position, *((sums - sums_before) / max(batch - batch_before, 1)))
        batch_before, sums_before = batch, sums
    return values


def exponential_moving_average(values, smoothing: float = 0.9) -> np.ndarray:
    """Smoothed copy of a noisy curve, debiased so the first points are not pulled towards zero."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing={smoothing!r}, expected a number in [0, 1), e.g. 0.9.")
    values = np.asarray(values, dtype=np.float64)
    smoothed, running = np.empty_like(values), 0.0
    for i, value in enumerate(values):
        running = smoothing * running + (1.0 - smoothing) * value
        smoothed[i] = running / (1.0 - smoothing ** (i + 1))
    return smoothed
