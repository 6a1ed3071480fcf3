"""The shipped default model loads safely and scores what its card says."""

import numpy as np
import pytest

from fmnist_core.evaluation import evaluate
from fmnist_core.hyperparameters import PRESETS


@pytest.mark.slow
def test_shipped_model_scores_its_card_accuracy_on_the_test_set(shipped_model, dataset):
    saved = shipped_model.saved
    evaluation = evaluate(shipped_model.classifier, dataset.test_images, dataset.test_labels)
    assert saved.card["test_accuracy"] >= 0.94 and saved.hyperparameters.mirror_average
    assert abs(evaluation.test_accuracy - saved.card["test_accuracy"]) <= 0.003
    assert evaluation.test_loss == pytest.approx(saved.card["test_loss"], abs=0.01)


def test_shipped_model_card_describes_the_best_preset(shipped_model, dataset):
    saved, model = shipped_model.saved, shipped_model.model
    card = saved.card
    # the preset asks for "auto" precision; the card records what the training CPU used (bfloat16: it had AMX)
    assert card["preset"] == "best" and saved.hyperparameters.precision == "mixed_bfloat16"
    assert saved.hyperparameters.with_changes(precision="auto") == PRESETS["best"]
    assert card["parameter_count"] == model.count_params() == PRESETS["best"].parameter_count()
    assert card["dataset_sha256"] == dataset.sha256
    assert card["class_names"] == list(dataset.class_names)
    assert len(card["history"]) == card["hyperparameters"]["epochs"] and card["train_seconds"] > 0
    for key in ("created", "tensorflow_version", "keras_version", "test_loss", "per_class"):
        assert card[key], key


@pytest.mark.slow
def test_the_shipped_model_has_its_own_threshold_that_flags_few_test_items(shipped_model, dataset):
    saved = shipped_model.saved
    assert 0.2 < saved.unsure_below < 0.9
    top = shipped_model.classifier.probabilities(dataset.test_images).max(axis=1)
    assert np.mean(top < saved.unsure_below) <= 0.03
