"""Evaluation on the test set: loss, accuracy, per-class precision/recall/F1, confusion matrix, mistakes.

Everything after the forward pass is vectorised numpy; the forward pass goes through `Classifier`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import NUM_CLASSES

_EPSILON = 1e-7


@dataclass(frozen=True)
class Evaluation:
    test_loss: float  # mean cross-entropy, without label smoothing
    test_accuracy: float
    confusion: np.ndarray  # (10, 10) int, rows = true class, columns = predicted class
    precision: np.ndarray  # (10,) per class
    recall: np.ndarray
    f1: np.ndarray
    probabilities: np.ndarray  # (N, 10) float32
    labels: np.ndarray  # (N,) true classes
    predictions: np.ndarray  # (N,) predicted classes

    def misclassified_indices(self, true_class: int | None = None, predicted_class: int | None = None) -> np.ndarray:
        """Indices of the wrongly classified images, optionally of one true and/or predicted class,
        the most confident mistakes first."""
        wrong = self.predictions != self.labels
        if true_class is not None:
            wrong &= self.labels == true_class
        if predicted_class is not None:
            wrong &= self.predictions == predicted_class
        indices = np.flatnonzero(wrong)
        confidence = self.probabilities[indices, self.predictions[indices]]
        return indices[np.argsort(-confidence, kind="stable")]

    def metrics(self) -> dict[str, float]:
        """The summary numbers a model card stores."""
        return {"test_loss": self.test_loss, "test_accuracy": self.test_accuracy}

    def per_class(self, class_names: tuple[str, ...]) -> list[dict]:
        """One row per class: name, precision, recall, F1 and support (number of test images)."""
        support = self.confusion.sum(axis=1)
        return [
            {"class": name, "precision": float(self.precision[i]), "recall": float(self.recall[i]),
             "f1": float(self.f1[i]), "support": int(support[i])}
            for i, name in enumerate(class_names)
        ]


def evaluate_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> Evaluation:
    """All metrics from predicted probabilities and true labels."""
    probabilities = np.asarray(probabilities, dtype=np.float32)
    labels = np.asarray(labels).astype(np.int64)
    predictions = probabilities.argmax(axis=1)
    confusion = np.bincount(labels * NUM_CLASSES + predictions, minlength=NUM_CLASSES**2).reshape(
        NUM_CLASSES, NUM_CLASSES
    )
    true_positives = np.diag(confusion).astype(np.float64)
    predicted_totals = confusion.sum(axis=0)
    actual_totals = confusion.sum(axis=1)
    precision = np.divide(true_positives, predicted_totals, out=np.zeros(NUM_CLASSES), where=predicted_totals > 0)
    recall = np.divide(true_positives, actual_totals, out=np.zeros(NUM_CLASSES), where=actual_totals > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(NUM_CLASSES), where=denominator > 0)
    true_probability = probabilities[np.arange(len(labels)), labels]
    return Evaluation(
        test_loss=float(-np.mean(np.log(np.clip(true_probability, _EPSILON, 1.0)))),
        test_accuracy=float(np.mean(predictions == labels)),
        confusion=confusion,
        precision=precision,
        recall=recall,
        f1=f1,
        probabilities=probabilities,
        labels=labels,
        predictions=predictions,
    )


def evaluate(classifier, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Run `classifier` (a `fmnist_core.inference.Classifier`) over `images` and score it against `labels`."""
    return evaluate_probabilities(classifier.probabilities(images), labels)
