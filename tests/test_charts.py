"""The app's Plotly charts (views/charts.py): the confusion matrix's clickable cells and the thinned batch curves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmnist_core.data import CLASS_NAMES
from fmnist_core.reporting import batch_values
from views import charts


def test_a_click_on_a_confusion_cell_selects_that_pair():
    figure = charts.confusion_figure(np.arange(100).reshape(10, 10), CLASS_NAMES)
    markers = figure.data[1]
    point = 3 * 10 + 6  # true class 3, predicted class 6
    event = {"selection": {"points": [{"x": markers.x[point], "y": markers.y[point],
                                       "customdata": list(markers.customdata[point])}]}}
    assert (markers.y[point], markers.x[point]) == (CLASS_NAMES[3], CLASS_NAMES[6])
    assert charts.selected_cell(event) == (3, 6)
    assert charts.selected_cell({"selection": {"points": []}}) is None
    # what the browser gets: plain lists (a numpy array would travel as a typed array and come back as a dict)
    assert json.loads(figure.to_json())["data"][1]["customdata"][point] == [3, 6]


def test_the_live_batch_chart_draws_at_most_300_points_per_curve_and_always_the_latest():
    batches_per_epoch = 100
    points = [(epoch + batch / batches_per_epoch, 2.0 - 0.001 * (epoch * 100 + batch), 0.5)
              for epoch in range(10) for batch in range(1, batches_per_epoch + 1)]
    figure = charts.batch_curves(points, batches_per_epoch)
    for trace in figure.data:
        assert 250 <= len(trace.x) <= charts.MAX_DRAWN_POINTS + 1 and trace.x[-1] == 10.0
    latest_loss = batch_values(points, batches_per_epoch)[-1, 1]
    assert figure.data[0].y[-1] == pytest.approx(latest_loss)  # the latest batch, not a thinned-out neighbour


def test_the_sweep_chart_draws_before_any_trial_has_a_score_and_marks_tried_values_only():
    from fmnist_core.events import TrialEnd

    failed = TrialEnd("00", {"batch_size": 64}, None, 0, 0.0, "failed", "an impossible model")
    assert charts.parallel_coordinates([failed], ["batch_size"]).data[0].dimensions[0].label == "Batch size"
    done = [TrialEnd("00", {"batch_size": 128}, 0.9, 1, 1.0, "completed")]
    only = charts.parallel_coordinates(done, ["batch_size"]).data[0].dimensions
    assert list(only[0].tickvals) == [128] and list(only[0].range) == [127, 129]  # one value, mid-axis
    assert only[1].label == "Validation<br>accuracy (%)" and list(only[1].values) == [90.0]
    assert list(only[1].range) == [89, 91] and list(only[1].ticktext) == ["89", "89.5", "90", "90.5", "91"]


def test_the_sweep_charts_axis_titles_are_on_two_short_lines_at_most_with_room_above_them():
    from fmnist_core.events import TrialEnd

    names = ["learning_rate", "early_stopping_patience", "train_subset_size", "convs_per_block", "batch_size"]
    done = [TrialEnd("00", {"learning_rate": 0.001, "early_stopping_patience": 2, "train_subset_size": 0,
                            "convs_per_block": 1, "batch_size": 64}, 0.9, 1, 1.0, "completed")]
    figure = charts.parallel_coordinates(done, names)
    titles = [dimension.label for dimension in figure.data[0].dimensions]
    assert titles == ["Learning<br>rate", "Early-stopping<br>patience", "Training<br>images",
                      "Convolutions<br>per block", "Batch size", "Validation<br>accuracy (%)"]
    assert figure.layout.margin.t == 30 + 16 * 2  # two lines fit above the axes


def test_a_partial_epoch_is_an_open_marker_labelled_partial():
    epochs = [{"epoch": 1, "loss": 1.0, "val_loss": 0.9, "complete": True},
              {"epoch": 2, "loss": 0.8, "val_loss": 0.7, "complete": False}]
    training = charts.epoch_curves(epochs, "loss").data[0]
    assert list(training.marker.symbol) == ["circle", "circle-open"] and "partial" in training.customdata[1]
