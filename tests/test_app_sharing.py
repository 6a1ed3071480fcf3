"""AppTests of one server shared by visitors: whose runs a visitor may delete, the operator's sign-in and what it
allows, and a job of another visitor's on the Train page. Each AppTest session is another visitor (its own id)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from apptest_support import changed_settings, job_queue, open_page, serving_models_from, texts, with_shipped_model
from waiting import job_ended, wait_until

from fmnist_core.hyperparameters import preset
from fmnist_core.jobs import RUN, JobState
from fmnist_core.ownership import SignInThrottle, owner_key
from views import session

PASSWORD = "let-me-in"
TINY = preset("seed-004", train_subset_size=1000, epochs=1)


@pytest.fixture
def models_dir(tmp_path):
    """The shipped model, and a copy of it as "someone-elses", saved by another visitor's run."""
    root = with_shipped_model(tmp_path)
    shutil.copytree(root / "default", root / "someone-elses")
    card = json.loads((root / "someone-elses" / "card.json").read_text())
    (root / "someone-elses" / "card.json").write_text(json.dumps({**card, "owner": owner_key("another browser")}))
    with serving_models_from(root):
        yield root


def sign_in(at, password: str):
    at.sidebar.text_input(key="operator_password_input").set_value(password)
    return at.sidebar.button(key="operator_sign_in").click().run()


@pytest.fixture
def operator(models_dir):
    """The server has an operator password (PASSWORD) while the test runs."""
    with changed_settings(operator_password=PASSWORD):
        yield PASSWORD


def test_a_visitor_is_not_offered_another_visitors_run_to_delete(models_dir):
    at = open_page("views/runs.py")
    assert "1 saved run of other visitors is not listed" in texts(at.caption)
    assert "You have no saved run to delete" in texts(at.caption)
    assert not [box for box in at.selectbox if box.key == "delete_model"]


def test_a_visitors_own_last_run_stays_first_on_train_when_another_visitors_run_ended_after_it(models_dir):
    at = open_page()
    me = owner_key(at.session_state["_visitor_id"])
    queue = job_queue()
    for name, owner, saved in (("alice-run", me, "default"), ("carol-run", owner_key("another browser"),
                                                               "someone-elses")):
        job = queue.submit(RUN, name, owner, hyperparameters=preset("seed-004", train_subset_size=1000, epochs=1))
        queue.claim_next(0, pid=1)
        queue.finish(job.job_id, 1, JobState.FINISHED, saved_name=saved, test_accuracy=0.5)
    assert queue.latest().run_name == "carol-run"  # the server's latest run is the other visitor's

    at.run()
    headings = texts(at.subheader).splitlines()
    assert headings[0] == "Your last run “alice-run”" and "Run “carol-run”" in headings[1:]
    assert "saved as **default**" in texts(at.success[:1]) and "saved as **someone-elses**" in texts(at.success[1:])
    assert "yours" in texts(at.caption) and "started by another visitor" in texts(at.caption)


def test_without_an_operator_password_there_is_no_operator_box(models_dir):
    at = open_page()
    assert not [box for box in at.sidebar.text_input if box.key == "operator_password_input"]


@pytest.fixture
def still_clock(monkeypatch) -> SignInThrottle:
    """The server's sign-in throttle, new, on a clock that stands still: a wait does not run out while a test runs
    on a busy machine, and no other test's wrong passwords count."""
    from views import resources

    throttle = SignInThrottle(clock=lambda: 1000.0)
    monkeypatch.setattr(resources, "sign_in_throttle", lambda: throttle)
    return throttle


def test_after_three_wrong_passwords_this_browser_waits_even_with_the_right_one(models_dir, operator, still_clock):
    at = open_page()
    for _ in range(3):
        at = sign_in(at, "guess")
        assert "That is not the operator password" in texts(at.warning)
    at = sign_in(at, PASSWORD)
    assert "so this one was not checked: try again in 2 s." in texts(at.warning)
    assert "Signed in as the operator" not in texts(at.sidebar.caption)


def test_strangers_guessing_from_the_operators_own_address_never_keep_the_operators_browser_out(models_dir,
                                                                                             operator,
                                                                                             still_clock):
    """#30 item 2: while three strangers kept sending wrong passwords, the operator was told to wait 14 s."""
    at = open_page()
    at.session_state[session.ADDRESS_KEY] = "office"
    at = sign_in(at, PASSWORD)  # the operator's browser, signed in once before
    at.sidebar.button(key="operator_sign_out").click().run()
    for attempt in range(40):  # strangers: a new browser id for every try, from the office and from elsewhere
        still_clock.attempt(f"stranger-{attempt}", ("office", "addr-1", "addr-2")[attempt % 3], lambda: False)
    stranger = open_page()
    stranger.session_state[session.ADDRESS_KEY] = "office"
    assert "try again in 2 s" in texts(sign_in(stranger, PASSWORD).warning)  # they wait, even with the password
    at = sign_in(at, PASSWORD)
    assert "Signed in as the operator" in texts(at.sidebar.caption)


def _keep_jobs_waiting(monkeypatch) -> None:
    """No worker is started for the jobs these tests queue: they only fill the queue."""
    from fmnist_core.executors import LocalWorkers

    monkeypatch.setattr(LocalWorkers, "keep_running", lambda *args, **kwargs: False)


def test_a_start_refused_at_the_visitors_limit_says_why_and_when_to_try_again(models_dir, monkeypatch):
    _keep_jobs_waiting(monkeypatch)
    at = open_page()
    me = owner_key(at.session_state["_visitor_id"])
    job_queue().submit(RUN, "mine 1", me, hyperparameters=TINY)
    job_queue().claim_next(0, pid=1)  # training
    job_queue().submit(RUN, "mine 2", me, hyperparameters=TINY)
    at.run()
    at.button(key="start_training").click().run()
    warning = texts(at.warning)
    assert "Your run was not queued: you already have 2 jobs waiting or training, the most one visitor may have at " \
           "once (2)." in warning
    assert re.search(r"You can try again in about (\d+ s|\d+ min \d\d s), when one of those jobs has ended \(an "
                     r"estimate\)\.", warning)


def test_a_start_refused_at_the_addresss_limit_counts_every_browser_there(models_dir, monkeypatch):
    """#30 item 1: a script that cleared its cookie between Starts filled the queue with one address."""
    _keep_jobs_waiting(monkeypatch)
    for number in range(4):  # the same address, a new browser id each time
        job_queue().submit(RUN, f"script {number}", owner_key(f"cleared cookie {number}"), hyperparameters=TINY,
                           address="their address")
    at = open_page()
    at.session_state[session.ADDRESS_KEY] = "their address"
    at.run()
    at.button(key="start_training").click().run()
    warning = texts(at.warning)
    assert "Your run was not queued: 4 jobs from your network address are waiting or training, the most one " \
           "address may have at once (4), whichever browsers started them." in warning
    assert "You can try again in about" in warning
    other = open_page()  # another address (here: this machine) is not held up
    other.button(key="start_training").click().run()
    assert "not queued" not in texts(other.warning) and len(job_queue().active()) == 5


@pytest.mark.slow  # the worker trains a run for the operator to stop
def test_a_wrong_password_is_refused_and_the_operator_may_delete_and_stop_anything(models_dir, operator):
    at = sign_in(open_page("views/runs.py"), "guess")
    assert "That is not the operator password" in texts(at.warning)
    assert not [box for box in at.selectbox if box.key == "delete_model"]

    at = sign_in(at, PASSWORD)
    assert "Signed in as the operator" in texts(at.sidebar.caption)
    assert at.selectbox(key="delete_model").options == ["someone-elses"]
    at.button(key="delete_button").click().run()
    assert "Deleted the model 'someone-elses'." in texts(at.success)
    assert not (models_dir / "someone-elses").exists()

    # another visitor's runs, one training and one waiting: the operator may stop the first and cancel the second
    other = owner_key("another browser")
    training = job_queue().submit(RUN, "theirs", other, hyperparameters=preset("seed-004", train_subset_size=20000))
    waiting = job_queue().submit(RUN, "theirs too", other, hyperparameters=preset("seed-004", train_subset_size=1000))
    at.switch_page("views/train.py").run()  # the page view starts the worker
    wait_until(lambda: job_queue().snapshot(training.job_id).is_running, 60, "the worker did not start the run")
    at.run()
    assert "started by another visitor" in texts(at.caption) and "another visitor" in texts(at.markdown)
    at.button(key=f"cancel_{waiting.job_id}").click().run()
    assert job_queue().snapshot(waiting.job_id).state == JobState.CANCELLED
    at.button(key="stop_training").click().run()
    assert job_ended(job_queue(), training.job_id, 120).state == JobState.STOPPED
    at.sidebar.button(key="operator_sign_out").click().run()
    assert "Signed in as the operator" not in texts(at.sidebar.caption)


def test_a_change_of_the_operator_password_signs_the_operator_out(models_dir, operator):
    at = sign_in(open_page("views/runs.py"), PASSWORD)
    assert "Signed in as the operator" in texts(at.sidebar.caption)
    with changed_settings(operator_password="a new one"):
        at.run()
        assert "Signed in as the operator" not in texts(at.sidebar.caption)
        assert not [box for box in at.selectbox if box.key == "delete_model"]


def test_a_job_queue_that_cannot_be_opened_stops_training_only_and_says_what_to_check(tmp_path):
    root = with_shipped_model(tmp_path)
    (root / ".jobs").write_text("a file where the queue's folder should be")
    with serving_models_from(root):
        at = open_page()
        assert "Training is unavailable on this server: the job queue (.jobs/queue.sqlite3 in the model folder) "\
               "cannot be opened" in texts(at.error) and "Check that the model folder is writable" in texts(at.error)
        assert str(root) not in texts(at.error)
        at.switch_page("views/classify.py").run()
        assert not at.exception and at.title[0].value == "Classify"
