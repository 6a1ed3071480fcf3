"""The Classifier on the shipped model: ten threads at once get what one thread alone gets, bad inputs are refused,
and an Answer is confident only from its threshold on."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from fmnist_core.inference import UNSURE_BELOW, Answer, Classifier

THREADS = 10


@pytest.fixture(scope="module")
def classifier(shipped_model) -> Classifier:
    return shipped_model.classifier


def test_ten_threads_classifying_at_once_match_the_single_threaded_answers(classifier, dataset):
    # each thread its own images and batch size (1 to 10), some overlapping, as sessions' uploads would be
    batches = [dataset.test_images[index * 7 : index * 7 + index + 1] for index in range(THREADS)]
    expected = [classifier.probabilities(batch) for batch in batches]  # one thread, one call at a time
    barrier = threading.Barrier(THREADS)
    results: list[list[np.ndarray]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def classify(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(20):
                results[index].append(classifier.probabilities(batches[index]))
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=classify, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and not any(thread.is_alive() for thread in threads)
    for index in range(THREADS):
        assert len(results[index]) == 20
        for answer in results[index]:
            np.testing.assert_allclose(answer, expected[index], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(answer.argmax(axis=1), expected[index].argmax(axis=1))


def test_a_classifier_refuses_images_of_the_wrong_shape_or_type(classifier):
    with pytest.raises(ValueError, match=r"images of shape \(28, 28, 3\) and dtype uint8: expected uint8"):
        classifier.probabilities(np.zeros((28, 28, 3), np.uint8))
    with pytest.raises(ValueError, match=r"dtype float64"):
        classifier.probabilities(np.zeros((28, 28)))


def test_an_answer_is_confident_only_at_or_above_the_threshold():
    probabilities = np.full(10, 0.05, np.float32)
    probabilities[4] = 0.55
    assert Answer(probabilities, 4, 0.5).confident
    assert not Answer(probabilities, 4, 0.6).confident
    assert UNSURE_BELOW == 0.5
