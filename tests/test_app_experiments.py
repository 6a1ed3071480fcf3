"""AppTests of issue 7's pages: model families on Train and Runs; the Sweep page (a bad value is named,
a tiny sweep runs live and its best retrains, another session stops it)."""

from __future__ import annotations

import json

import pytest
from apptest_support import job_queue, open_page, serving_models_from, texts
from streamlit.testing.v1 import AppTest
from waiting import job_ended, wait_until

from fmnist_core.jobs import RUN, SWEEP, JobState
from fmnist_core.ownership import Visitor

PAGE = "views/sweep.py"
TIMEOUT = 120


@pytest.fixture
def empty_store(tmp_path):
    """An empty model store the app's ModelStore() points at, with a fresh job slot."""
    with serving_models_from(tmp_path) as root:
        yield root


def tiny(at: AppTest, values: str, base: str = "softmax-regression") -> AppTest:
    at.selectbox(key="sweep_preset").set_value(base)
    at.multiselect(key="sweep_fields").set_value(["learning_rate"]).run()
    at.text_input(key="sweep_values_learning_rate").set_value(values)
    at.number_input(key="sweep_epochs").set_value(1)
    at.number_input(key="sweep_subset").set_value(1000)
    return at.run()


def test_the_page_starts_from_the_classic_grid_and_names_a_bad_value(empty_store):
    at = open_page(PAGE)
    assert at.title[0].value == "Sweep hyperparameters"
    assert at.multiselect(key="sweep_fields").value == ["learning_rate", "batch_size", "dropout_rate"]
    assert at.text_input(key="sweep_values_batch_size").value == "32,64,128"
    assert "6 trials of 27 combinations" in texts(at.caption)
    at.text_input(key="sweep_values_dropout_rate").set_value("0.1,0.9").run()
    assert "dropout_rate=0.9 is outside 0.0-0.8" in texts(at.error[:1])
    assert at.button(key="sweep_start").disabled and job_queue().newest() is None


@pytest.mark.slow
def test_a_tiny_sweep_fills_the_table_and_chart_and_its_best_retrains_on_all_images(empty_store):
    at = tiny(open_page(PAGE), "1e-3,3e-3")
    at.button(key="sweep_start").click().run()
    job = job_ended(job_queue(), job_queue().newest().job_id, TIMEOUT)
    assert job.kind == SWEEP
    at.run()
    assert not at.exception and job.state == JobState.FINISHED
    table = at.table[0].value  # a table that fits a phone: no status column while every trial completed
    assert sorted(table["Learning rate"]) == ["0.001", "0.003"] and "Status" not in table.columns
    assert list(table["Trial"]) == ["1", "2"]  # numbered from 1, as the progress line counts them
    assert all(value.endswith("%") for value in table["Validation accuracy"])
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert chart["type"] == "parcoords" and [d["label"] for d in chart["dimensions"]] == [
        "Learning<br>rate", "Validation<br>accuracy (%)"]  # on short lines, which fit a phone
    assert 10 < min(chart["dimensions"][1]["values"]) <= 100  # in %, as in the table
    best = job.best
    markdown = texts(at.markdown)
    assert f"trial **{int(best.trial_id) + 1}**" in markdown
    assert f"with Learning rate {best.values['learning_rate']:g}." in markdown  # words, not a Python dict

    at.button(key="retrain_best").click().run()
    retrain = job_queue().newest()
    assert retrain.kind == RUN and retrain.from_sweep == (job.job_id, best.trial_id)
    hp = retrain.hyperparameters
    assert (hp.learning_rate, hp.train_subset_size, hp.epochs) == (best.values["learning_rate"], 0, 10)
    wait_until(lambda: job_queue().snapshot(retrain.job_id).is_running, TIMEOUT, "the retraining did not start")
    at.run()
    # the sweep stays on its page and the retraining is shown beside it
    assert at.table[0].value.shape[0] == 2 and "No sweep" not in "\n".join(c.value for c in at.caption)
    assert f"Retraining trial {int(best.trial_id) + 1} on the full training set" in texts(at.info)
    # the full run would take minutes; its settings are what this checks
    job_queue().request_stop(retrain.job_id, Visitor(retrain.owner))
    retrain = job_ended(job_queue(), retrain.job_id, TIMEOUT)
    assert retrain.saved_name.startswith("sweep-best-")
    at.run()
    assert f"Retraining trial {int(best.trial_id) + 1}: Stopped early by request after" in texts(at.warning)
    assert at.table[0].value.shape[0] == 2 and not at.button(key="retrain_best").disabled


def test_another_visitor_watches_the_sweep_but_only_its_owner_stops_it(empty_store):
    first = tiny(open_page(PAGE), "1e-3,2e-3,3e-3", base="seed-004")  # a CNN: still running when stopped
    first.number_input(key="sweep_subset").set_value(5000).run()
    first.button(key="sweep_start").click().run()
    job = job_queue().newest()
    wait_until(lambda: job_queue().snapshot(job.job_id).is_running, TIMEOUT, "the sweep did not start")
    second = open_page(PAGE)
    assert "started by another visitor" in texts(second.caption) and "Only the visitor who started it" in texts(
        second.caption)
    assert not [button for button in second.button if button.key == "stop_sweep"]
    first.run()
    first.button(key="stop_sweep").click().run()
    job = job_ended(job_queue(), job.job_id, TIMEOUT)
    assert job.state == JobState.STOPPED and len(job.trials) <= 1


# ---- model families ---------------------------------------------------------------------------------
def test_the_mlp_preset_fills_the_train_form_with_no_conv_blocks(empty_store):
    at = open_page("views/train.py")
    at.selectbox(key="preset").set_value("mlp").run()
    assert at.slider(key="hp_num_conv_blocks").value == 0
    assert at.text_input(key="hp_extra_dense_units").value == "128,100"
    assert not at.error and "no convolutions: MLP on the 784 pixels" in texts(at.caption)
    at.text_input(key="hp_extra_dense_units").set_value("128,1x")
    at.button(key="start_training").click().run()
    assert "extra dense layers '128,1x': expected whole numbers" in texts(at.error[:1])
    assert job_queue().newest() is None


def test_the_runs_page_shows_each_runs_model_family(empty_store, dataset):
    from fmnist_core.hyperparameters import preset
    from fmnist_core.store import ModelStore
    from fmnist_core.train_and_save import train_evaluate_save

    train_evaluate_save(preset("softmax-regression", train_subset_size=1000, epochs=1), dataset,
                        ModelStore(empty_store), "softmax", preset="softmax-regression")
    at = open_page("views/runs.py")
    assert "**softmax**" in texts(at.markdown) and "softmax regression · preset softmax-regression" in texts(at.caption)
