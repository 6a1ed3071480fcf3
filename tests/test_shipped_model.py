"""The shipped default model loads safely and scores what its card says."""

from pathlib import Path

import pytest

from fmnist_core.evaluation import evaluate
from fmnist_core.hyperparameters import PRESETS
from fmnist_core.inference import Classifier
from fmnist_core.store import DEFAULT_MODEL, ModelStore

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture(scope="module")
def shipped():
    store = ModelStore(REPO_MODELS)
    return store.get(DEFAULT_MODEL), store.load_model(DEFAULT_MODEL)


def test_shipped_model_scores_its_card_accuracy_on_the_test_set(shipped, dataset):
    saved, model = shipped
    evaluation = evaluate(Classifier(model), dataset.test_images, dataset.test_labels)
    assert saved.card["test_accuracy"] >= 0.93
    assert abs(evaluation.test_accuracy - saved.card["test_accuracy"]) <= 0.003
    assert evaluation.test_loss == pytest.approx(saved.card["test_loss"], abs=0.01)


def test_shipped_model_card_describes_the_best_preset(shipped, dataset):
    saved, model = shipped
    card = saved.card
    assert card["preset"] == "best" and saved.hyperparameters == PRESETS["best"]
    assert card["parameter_count"] == model.count_params() == PRESETS["best"].parameter_count()
    assert card["dataset_sha256"] == dataset.sha256
    assert card["class_names"] == list(dataset.class_names)
    assert len(card["history"]) == card["hyperparameters"]["epochs"] and card["train_seconds"] > 0
    for key in ("created", "tensorflow_version", "keras_version", "test_loss", "per_class"):
        assert card[key], key
