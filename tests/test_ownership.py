"""Who may stop, cancel and delete what: the policy in fmnist_core/ownership.py, with known answers."""

from fmnist_core.ownership import ActiveModels, SignInThrottle, Visitor, owner_key, password_matches


def test_the_owner_key_is_stable_per_browser_id_and_does_not_reveal_it():
    key = owner_key("browser-id-abc")
    assert key == owner_key("browser-id-abc") != owner_key("browser-id-abd")
    assert len(key) == 16 and "browser" not in key


def test_a_visitor_controls_their_own_jobs_and_the_operator_everyones():
    alice, bob = Visitor(owner_key("a")), Visitor(owner_key("b"))
    operator = Visitor(owner_key("c"), is_operator=True, operator_configured=True)
    assert alice.may_control(alice.key) and not alice.may_control(bob.key)
    assert operator.may_control(alice.key) and operator.may_control(bob.key)


def test_who_may_delete_a_model_depends_on_its_owner_and_whether_an_operator_is_set():
    alice = Visitor(owner_key("a"))
    assert alice.delete_refusal(alice.key) is None
    assert "another visitor trained it" in alice.delete_refusal(owner_key("b"))
    assert alice.delete_refusal(None) is None  # a CLI model, on a server without an operator
    guarded = Visitor(owner_key("a"), operator_configured=True)
    assert "only the operator" in guarded.delete_refusal(None)
    assert Visitor(owner_key("z"), is_operator=True, operator_configured=True).delete_refusal(None) is None


def test_the_operator_password_must_be_set_and_match():
    assert password_matches("s3cret", "s3cret")
    assert not password_matches("s3cret", "other") and not password_matches("", None) and not password_matches("", "")


def test_a_model_is_in_use_only_by_other_live_sessions():
    alive = {"s1", "s2", "s3"}
    active = ActiveModels(lambda session: session in alive)
    active.use("s1", "wide")
    active.use("s2", "wide")
    active.use("s3", "default")
    assert active.other_users("wide", "s1") == 1 and active.other_users("default", "s3") == 0
    alive.discard("s2")  # that tab was closed
    assert active.other_users("wide", "s1") == 0
    active.use("s1", None)
    assert active.other_users("wide", "s9") == 0


def test_sign_in_waits_after_too_many_wrong_passwords_per_visitor_and_in_all():
    now, asked = [0.0], []
    throttle = SignInThrottle(per_visitor=3, visitor_window=600, overall=5, overall_window=60,
                              clock=lambda: now[0])

    def wrong(key):
        return throttle.attempt(key, lambda: asked.append(key) or False)

    for second in (0, 10, 20):
        now[0] = second
        assert wrong("a") == (False, 0.0)
    assert wrong("a") == (False, 580.0) and asked == ["a"] * 3  # a's first failure (t=0) leaves at 600; not asked
    assert wrong("b") == (False, 0.0) and wrong("c") == (False, 0.0)  # five in the last minute, from three browsers
    assert throttle.attempt("d", lambda: True) == (False, 40.0)  # everyone waits, even with the right password
    now[0] = 61.0  # the failures at 0 and 10 s have left the minute: 3 in it
    assert throttle.attempt("d", lambda: True) == (True, 0.0)
    assert wrong("a") == (False, 539.0)  # a alone still waits out its 10 minutes
    now[0] = 600.0
    assert throttle.attempt("a", lambda: True) == (True, 0.0)  # the right password clears a's failures
    assert wrong("a") == (False, 0.0)
