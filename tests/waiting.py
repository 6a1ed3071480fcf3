"""Waiting for a condition instead of sleeping a fixed time: poll it until it holds or a timeout passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout_seconds: float, failure: str, interval_seconds: float = 0.2,
               pause: Callable[[float], object] = time.sleep) -> T:
    """Call `condition` every `interval_seconds` until it returns something true, and return that.

    After `timeout_seconds` without it, raise AssertionError("<failure> within N s"). Browser tests pass the page's
    own pause (`lambda s: page.wait_for_timeout(s * 1000)`) so that Playwright keeps handling events meanwhile.
    """
    deadline = time.monotonic() + timeout_seconds
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{failure} within {timeout_seconds:g} s")
        pause(interval_seconds)
    return result


def job_ended(queue, job_id: str, timeout_seconds: float):
    """The snapshot of a job of `queue` (fmnist_core.job_queue.JobQueue) once it has ended (finished, stopped,
    failed or cancelled); AssertionError if it has not within `timeout_seconds`."""
    def ended():
        snapshot = queue.snapshot(job_id)
        return snapshot if not snapshot.state.is_active else None

    return wait_until(ended, timeout_seconds, f"the job {job_id} did not end", interval_seconds=0.2)
