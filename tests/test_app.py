"""AppTests of the Streamlit app: each page as a user sees it, against a small model in a temporary store."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from apptest_support import changed_settings, job_queue, open_page, serving_models_from, texts, with_shipped_model
from images import encode
from streamlit.testing.v1 import AppTest
from waiting import job_ended, wait_until

from fmnist_core.data import CLASS_NAMES
from fmnist_core.hyperparameters import preset
from fmnist_core.jobs import JobState
from fmnist_core.store import TEST_PROBABILITIES_FILE, ModelStore

PAGES = ["views/train.py", "views/evaluate.py", "views/classify.py", "views/runs.py"]
TRAINING_TIMEOUT = 120


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, dataset):
    """A model store holding a quickly trained 'default' model; the app's ModelStore() points at it."""
    from fmnist_core.train_and_save import train_evaluate_save

    root = tmp_path_factory.mktemp("models")
    saved, _ = train_evaluate_save(preset("seed-004", train_subset_size=3000, epochs=1), dataset,
                                   ModelStore(root), "default", preset="seed-004")
    saved.path.rename(root / "default")  # the store never names a run "default"; the shipped model is put there
    with serving_models_from(root):
        yield root


def wait_for_job(at: AppTest, job_id: str | None = None):
    """Wait for the newest job (or `job_id`) to end in the worker process; the page redrawn then."""
    job = job_queue().newest() if job_id is None else job_queue().snapshot(job_id)
    assert job is not None
    snapshot = job_ended(job_queue(), job.job_id, TRAINING_TIMEOUT)
    assert not snapshot.state.is_active, f"the job did not finish in time: {snapshot.state}"
    at.run()  # the page now draws the finished run
    assert not at.exception, [e.value for e in at.exception]
    return snapshot


# ---- every page --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("page", "title"), [(PAGES[0], "Train a CNN"), (PAGES[1], "Evaluate"),
                                             (PAGES[2], "Classify"), (PAGES[3], "Saved runs")])
def test_every_page_loads_and_the_sidebar_shows_the_active_model(models_dir, page, title):
    at = open_page(page)
    assert at.title[0].value == title
    active = at.sidebar.selectbox(key="active_model")
    assert active.value == "default" and "default" in active.options[0]
    assert "Test accuracy" in texts(at.sidebar.markdown) and "seed-004" in texts(at.sidebar.markdown)


def test_an_empty_store_points_to_the_train_page(models_dir, tmp_path):
    (tmp_path / "broken").mkdir()
    with changed_settings(models_dir=tmp_path):
        at = open_page(PAGES[2])
    assert "No trained model yet" in texts(at.sidebar.info)
    assert "broken" in texts(at.sidebar.warning)
    assert "no model to classify with" in texts(at.info)


# ---- Train --------------------------------------------------------------------------------------------
def test_a_preset_fills_the_form(models_dir):
    at = open_page()
    assert at.select_slider(key="hp_learning_rate").value == preset("quick").learning_rate
    at.selectbox(key="preset").set_value("best").run()
    best = preset("best")
    assert at.slider(key="hp_epochs").value == best.epochs
    assert at.slider(key="hp_convs_per_block").value == best.convs_per_block
    assert [at.select_slider(key=f"hp_filters_{i}").value for i in (1, 2, 3)] == list(best.filters)
    assert at.toggle(key="hp_augment").value is True
    assert at.select_slider(key="hp_learning_rate").value == best.learning_rate
    assert f"epochs={best.epochs}" in at.code[0].value and "filters=32%2C64%2C128" in at.code[0].value  # the share link


def test_a_share_link_fills_the_form_and_names_bad_parameters(models_dir):
    at = open_page(query={"preset": "seed-004", "epochs": "7", "filters": "16,32", "batch_size": "100"})
    assert at.slider(key="hp_epochs").value == 7
    assert at.slider(key="hp_num_conv_blocks").value == 2
    assert [at.select_slider(key=f"hp_filters_{i}").value for i in (1, 2)] == [16, 32]
    assert at.select_slider(key="hp_batch_size").value == preset("seed-004").batch_size  # the fallback
    assert len(at.warning) == 1 and "`batch_size=100`" in at.warning[0].value
    assert at.selectbox(key="preset").value is None  # no longer the preset itself


def test_the_form_survives_a_visit_to_another_page(models_dir):
    at = open_page()
    at.selectbox(key="preset").set_value("seed-000").run()
    at.switch_page(PAGES[3]).run()
    at.switch_page(PAGES[0]).run()
    assert at.selectbox(key="preset").value == "seed-000" and at.select_slider(key="hp_kernel_size").value == 5


def test_impossible_settings_show_an_error_and_start_nothing(models_dir):
    at = open_page()
    before = job_queue().newest()
    at.slider(key="hp_num_conv_blocks").set_value(4)
    at.select_slider(key="hp_kernel_size").set_value(7)
    at.selectbox(key="hp_padding").set_value("valid")
    at.button(key="start_training").click().run()
    assert not at.exception
    assert "cannot be trained" in texts(at.error) and "below 1x1" in texts(at.error)
    assert job_queue().newest() == before


@pytest.mark.slow
def test_a_tiny_run_started_on_the_train_page_finishes_is_saved_and_can_be_used(models_dir):
    at = open_page()
    at.selectbox(key="preset").set_value("seed-004").run()
    at.slider(key="hp_train_subset_size").set_value(1000)
    at.slider(key="hp_epochs").set_value(1)
    at.text_input(key="run_name").set_value("app test run")
    at.button(key="start_training").click().run()
    assert not at.exception and job_queue().newest().run_name == "app test run"
    snapshot = wait_for_job(at)
    assert snapshot.saved_name == "app-test-run" and (models_dir / "app-test-run" / "model.keras").is_file()
    card = json.loads((models_dir / "app-test-run" / "card.json").read_text())
    assert card["hyperparameters"]["train_subset_size"] == 1000 and card["preset"] is None  # changed from seed-004
    assert "Finished after 1 epoch in" in texts(at.success) and "saved as **app-test-run**" in texts(at.success)
    assert len(at.get("plotly_chart")) == 3  # batch curve, epoch loss, epoch accuracy
    at.button(key="use_trained_model").click().run()
    assert at.sidebar.selectbox(key="active_model").value == "app-test-run"
    at.switch_page(PAGES[1]).run()
    assert "app-test-run" in texts(at.caption)  # Evaluate now uses it


@pytest.mark.slow
def test_a_second_visitor_watches_the_run_queues_their_own_and_only_the_owner_can_stop_or_cancel(models_dir):
    first = open_page()
    first.selectbox(key="preset").set_value("seed-004").run()
    first.slider(key="hp_train_subset_size").set_value(20000)  # long enough to still be running below
    first.text_input(key="run_name").set_value("long run")
    first.button(key="start_training").click().run()
    job = job_queue().newest()
    assert job.run_name == "long run" and job.state.is_active
    wait_until(lambda: job_queue().snapshot(job.job_id).is_running, 60, "the worker did not start the run")
    first.run()
    assert first.button(key="stop_training")  # the owner may stop it

    second = open_page()  # another visitor's browser: the run shows there too, without a Stop button
    assert second.subheader[0].value == "Run “long run”" and "started by another visitor" in texts(second.caption)
    assert not [button for button in second.button if button.key == "stop_training"]
    assert "Only the visitor who started it" in texts(second.caption)
    second.text_input(key="run_name").set_value("queued run")
    second.button(key="start_training").click().run()  # queued behind the run, not refused
    queued = job_queue().newest()
    assert queued.run_name == "queued run" and queued.state == JobState.QUEUED
    assert "1 job is ahead of yours, so your run “queued run” waits in the queue: number 1" in texts(second.info)
    assert "**1.** run “queued run” (quick) · **yours**" in texts(second.markdown)
    first.run()  # the first visitor sees it as another visitor's, with no Cancel button
    assert "**1.** run “queued run” (quick) · another visitor" in texts(first.markdown)
    assert not [button for button in first.button if button.key == f"cancel_{queued.job_id}"]
    second.button(key=f"cancel_{queued.job_id}").click().run()
    assert job_queue().snapshot(queued.job_id).state == JobState.CANCELLED and "Cancelled" in texts(second.info)

    first.button(key="stop_training").click().run()
    snapshot = wait_for_job(second, job.job_id)
    assert snapshot.state == JobState.STOPPED and snapshot.saved_name == "long-run"
    assert len(snapshot.epochs) < preset("seed-004").epochs
    assert "Stopped early by request" in texts(second.success)


# ---- Evaluate -----------------------------------------------------------------------------------------
def test_evaluate_shows_the_metrics_the_confusion_matrix_and_filters_the_mistakes(models_dir):
    at = open_page(PAGES[1])
    accuracy = ModelStore(models_dir).get("default").test_accuracy
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Test accuracy"] == f"{accuracy:.2%}"
    heatmap = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert heatmap["type"] == "heatmap" and heatmap["x"] == list(CLASS_NAMES)
    assert sum(map(sum, heatmap["z"])) == 10_000

    at.selectbox(key="filter_true").set_value("Shirt")
    at.selectbox(key="filter_pred").set_value("T-shirt/top").run()
    shirt, tshirt = CLASS_NAMES.index("Shirt"), CLASS_NAMES.index("T-shirt/top")
    expected = int(heatmap["z"][shirt][tshirt])
    assert f"**{expected:,}** misclassified" in texts(at.markdown)
    captions = [caption.value for caption in at.caption if "→" in caption.value]
    assert len(captions) == min(expected, 24) and all(c.startswith("**Shirt** → T-shirt/top (") for c in captions)
    confidences = [int(caption.rsplit("(", 1)[1].rstrip("%)")) for caption in captions]
    assert confidences == sorted(confidences, reverse=True)  # most confident mistakes first

    details = [button for button in at.button if button.key and button.key.startswith("inspect_")]
    assert len(details) == len(captions)
    details[1].click().run()
    assert f"Test image **#{details[1].key.removeprefix('inspect_')}**" in texts(at.markdown)


# ---- Classify -----------------------------------------------------------------------------------------
def test_classify_says_a_model_never_taught_non_items_names_anything_as_clothing(models_dir):
    shown = texts(open_page(PAGES[2]).caption)  # the store's model: seed-004, trained without non-items
    assert "This model was not taught pictures of other things" in shown and "“Unsure”" in shown


def test_classify_names_an_uploaded_test_image_and_reports_a_bad_file(models_dir, dataset):
    from views import resources

    trouser = CLASS_NAMES.index("Trouser")
    candidates = np.flatnonzero(dataset.test_labels == trouser)[:50]
    classifier = resources.classifier(ModelStore(models_dir).get("default"))
    probabilities = classifier.probabilities(dataset.test_images[candidates])
    index = candidates[probabilities[:, trouser].argmax()]

    at = open_page(PAGES[2])
    assert "Draw one item" in texts(at.info)  # the empty canvas
    at.file_uploader(key="uploads").set_value([
        ("broken.png", b"this is not a picture", "image/png"),
        ("trouser.png", encode(dataset.test_images[index]), "image/png"),
    ]).run()
    assert not at.exception
    assert len(at.error) == 1 and "broken.png" in texts(at.error)
    predictions = [metric for metric in at.metric if metric.label == "Prediction"]
    assert [metric.value for metric in predictions] == ["Trouser"]
    assert len(at.get("plotly_chart")) == 1  # its probability bars


# ---- Runs ---------------------------------------------------------------------------------------------
def test_runs_lists_the_models_and_deletes_one_but_never_the_default(models_dir):
    shutil.copytree(models_dir / "default", models_dir / "spare-copy")
    at = open_page(PAGES[3])
    cards = texts(at.markdown)
    assert "**default** · shipped" in cards and "**spare-copy**" in cards
    assert "test loss **" in cards and "Test accuracy **" in cards
    assert "default" not in at.selectbox(key="delete_model").options
    at.sidebar.selectbox(key="active_model").set_value("spare-copy").run()
    at.selectbox(key="delete_model").set_value("spare-copy")
    at.button(key="delete_button").click().run()
    assert not (models_dir / "spare-copy").exists()
    assert "Deleted the model 'spare-copy'" in texts(at.success)
    assert "spare-copy" not in at.sidebar.selectbox(key="active_model").options
    assert at.sidebar.selectbox(key="active_model").value == "default"  # the vanished choice is repaired


def test_runs_says_why_there_is_no_loss_chart_when_every_model_was_trained_with_label_smoothing(tmp_path):
    with serving_models_from(with_shipped_model(tmp_path)):
        at = open_page(PAGES[3])
    assert "No validation loss chart: the model here was trained with label smoothing" in texts(at.info)
    assert len(at.get("plotly_chart")) == 1  # the accuracy chart only


def test_deleting_a_model_that_vanished_meanwhile_shows_an_error(models_dir):
    shutil.copytree(models_dir / "default", models_dir / "short-lived")
    at = open_page(PAGES[3])
    at.selectbox(key="delete_model").set_value("short-lived")
    shutil.rmtree(models_dir / "short-lived")  # another session deleted it
    at.button(key="delete_button").click().run()
    assert not at.exception and "Could not delete 'short-lived'" in texts(at.error)


@pytest.mark.slow
def test_coming_back_to_evaluate_reuses_the_cached_evaluation(models_dir, monkeypatch):
    import fmnist_core.evaluation

    open_page(PAGES[1])

    def no_second_evaluation(*args, **kwargs):
        raise AssertionError("the test set was evaluated again")

    monkeypatch.setattr(fmnist_core.evaluation, "evaluate_probabilities", no_second_evaluation)
    at = open_page(PAGES[1])  # another session, same model version: served from the cache
    assert [metric.label for metric in at.metric][:2] == ["Test accuracy", "Test loss"]


def test_evaluate_scores_the_kept_test_probabilities_and_runs_no_model_over_the_test_set(models_dir, monkeypatch):
    """The run saved its test-set probabilities beside it: the page scores them with numpy; the web server runs no
    model over the 10,000 images (a mistake's Why panel still loads it, for one image at a time)."""
    import fmnist_core.evaluation
    from views import resources

    def no_model(*args, **kwargs):
        raise AssertionError("the web server ran the model over the test set")

    assert (models_dir / "default" / TEST_PROBABILITIES_FILE).is_file()
    resources.forget_models()
    monkeypatch.setattr(fmnist_core.evaluation, "evaluate", no_model)
    at = open_page(PAGES[1])
    assert dict((metric.label, metric.value) for metric in at.metric)["Test accuracy"] == \
        f"{ModelStore(models_dir).get('default').test_accuracy:.2%}"


@pytest.mark.slow
def test_a_model_without_kept_probabilities_is_scored_by_a_process_of_its_own(models_dir, monkeypatch):
    import fmnist_core.evaluation
    from views import resources

    shutil.copytree(models_dir / "default", models_dir / "copied-in")
    (models_dir / "copied-in" / TEST_PROBABILITIES_FILE).unlink()
    monkeypatch.setattr(fmnist_core.evaluation, "evaluate", lambda *args: pytest.fail("scored in the web server"))
    resources.forget_models()
    at = open_page(PAGES[1], model="copied-in")
    assert not at.error and [metric.label for metric in at.metric][:2] == ["Test accuracy", "Test loss"]
    kept = np.load(models_dir / "copied-in" / TEST_PROBABILITIES_FILE)
    np.testing.assert_allclose(kept, np.load(models_dir / "default" / TEST_PROBABILITIES_FILE), atol=1e-5)
