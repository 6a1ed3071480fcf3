"""The Batcher on the shipped model's Classifier: merged calls give each request its own answers."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_core.batching import Batcher, BatcherClosedError


@pytest.fixture
def batcher(shipped_model):
    running = Batcher(shipped_model.classifier.probabilities, max_batch_images=256, name="test")
    yield running
    running.close()


def test_requests_queued_while_the_model_is_busy_run_as_one_batch_with_their_own_answers(shipped_model, dataset,
                                                                                          batcher):
    classifier = shipped_model.classifier
    requests = [dataset.test_images[i : i + 1 + i % 3] for i in range(0, 64, 4)]  # 1 to 3 images each
    futures = [batcher.submit(images) for images in requests]
    answers = [future.result(timeout=60) for future in futures]
    for images, answer in zip(requests, answers, strict=True):
        np.testing.assert_allclose(answer, classifier.probabilities(images), atol=1e-6)
    assert sum(batcher.batch_sizes) == sum(len(images) for images in requests)
    assert len(batcher.batch_sizes) < len(requests) and max(batcher.batch_sizes) > 3  # merged, not one by one


@pytest.mark.slow
def test_a_batch_holds_at_most_max_batch_images_unless_one_request_is_larger(dataset, batcher):
    futures = [batcher.submit(dataset.test_images[:100]) for _ in range(6)] + [batcher.submit(dataset.test_images)]
    for future in futures:
        future.result(timeout=120)
    assert sum(batcher.batch_sizes) == 6 * 100 + len(dataset.test_images)  # every image, in recorded batches
    assert all(size <= 256 or size == len(dataset.test_images) for size in batcher.batch_sizes)


def test_a_failing_request_fails_its_batch_and_the_batcher_goes_on(dataset, batcher):
    bad = batcher.submit(np.zeros((1, 28, 28), np.float32))  # the Classifier takes uint8 only
    with pytest.raises(ValueError, match="expected uint8"):
        bad.result(timeout=60)
    assert batcher.submit(dataset.test_images[:1]).result(timeout=60).argmax() == dataset.test_labels[0]
    batcher.close()
    with pytest.raises(BatcherClosedError):
        batcher.submit(dataset.test_images[:1])
