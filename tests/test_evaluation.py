"""Evaluation metrics against hand-computed answers."""

import numpy as np
import pytest

from fmnist_core.evaluation import evaluate_probabilities


def one_hot_probabilities(predicted, confidence):
    probabilities = np.full((len(predicted), 10), 0.0, dtype=np.float32)
    for row, (cls, conf) in enumerate(zip(predicted, confidence, strict=True)):
        probabilities[row] = (1 - conf) / 9
        probabilities[row, cls] = conf
    return probabilities


def test_metrics_match_a_hand_computed_example():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    confidence = np.array([0.9, 0.6, 0.8, 0.7, 0.5, 0.95])
    evaluation = evaluate_probabilities(one_hot_probabilities(predicted, confidence), labels)
    assert evaluation.test_accuracy == pytest.approx(4 / 6)
    assert evaluation.confusion[0].tolist()[:3] == [1, 1, 0]
    assert evaluation.confusion[2].tolist()[:3] == [1, 0, 1]
    assert evaluation.confusion.sum() == 6
    # class 0: predicted twice (one right), actual twice (one right)
    assert evaluation.precision[0] == pytest.approx(0.5) and evaluation.recall[0] == pytest.approx(0.5)
    # class 1: predicted three times (two right), actual twice (both right)
    assert evaluation.precision[1] == pytest.approx(2 / 3) and evaluation.recall[1] == pytest.approx(1.0)
    assert evaluation.f1[1] == pytest.approx(0.8)
    true_probability = np.array([0.9, (1 - 0.6) / 9, 0.8, 0.7, 0.5, (1 - 0.95) / 9])
    assert evaluation.test_loss == pytest.approx(-np.log(true_probability).mean(), rel=1e-5)


def test_mistakes_are_sorted_most_confident_first_and_filter_by_pair():
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0])
    confidence = np.array([0.9, 0.6, 0.8, 0.7, 0.5, 0.95])
    evaluation = evaluate_probabilities(one_hot_probabilities(predicted, confidence), labels)
    assert evaluation.misclassified_indices().tolist() == [5, 1]
    assert evaluation.misclassified_indices(true_class=2, predicted_class=0).tolist() == [5]
    assert evaluation.misclassified_indices(true_class=1).tolist() == []


def test_per_class_rows_carry_names_and_support():
    labels = np.arange(10).repeat(2)
    evaluation = evaluate_probabilities(one_hot_probabilities(labels, np.full(20, 0.9)), labels)
    rows = evaluation.per_class(tuple(f"c{i}" for i in range(10)))
    assert rows[3] == {"class": "c3", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
