"""Who may stop, cancel and delete what: the policy in fmnist_core/ownership.py, with known answers."""

from fmnist_core.ownership import (
    ActiveModels,
    SignInThrottle,
    Visitor,
    address_key,
    client_address,
    owner_key,
    password_matches,
)


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


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wrong_password(throttle, browser, address, asked=None):
    return throttle.attempt(browser, address, lambda: (asked.append(browser) if asked is not None else None) or False)


def test_a_guessers_address_waits_longer_after_each_wrong_password_whatever_browser_it_claims():
    clock, asked = FakeClock(), []
    throttle = SignInThrottle(free_tries=3, first_wait=2, max_wait=60, forget_after=3600, clock=clock)
    for browser in ("b1", "b2", "b3"):  # a new cookie for each try: the address is the same
        assert wrong_password(throttle, browser, "addr-x", asked) == (False, 0.0)
    waits = []
    for step in range(6):
        signed_in, wait = throttle.attempt(f"new-{step}", "addr-x", lambda: True)  # not even asked
        assert not signed_in
        waits.append(wait)
        clock.now += wait
        assert wrong_password(throttle, f"next-{step}", "addr-x", asked) == (False, 0.0)
    assert waits == [2, 4, 8, 16, 32, 60]  # doubling, up to max_wait
    assert len(asked) == 3 + 6  # a waiting address's passwords were never checked
    assert throttle.attempt("someone", "addr-y", lambda: True) == (True, 0.0)  # another address is not held up
    clock.now += 3600
    assert throttle.attempt("b1", "addr-x", lambda: True) == (True, 0.0)  # an hour without a try: forgotten


def test_a_browser_changing_addresses_is_counted_too():
    clock = FakeClock()
    throttle = SignInThrottle(free_tries=2, first_wait=10, clock=clock)
    assert wrong_password(throttle, "b", "addr-1") == (False, 0.0)
    assert wrong_password(throttle, "b", "addr-2") == (False, 0.0)
    assert throttle.attempt("b", "addr-3", lambda: True) == (False, 10.0)


def test_strangers_guessing_never_keep_out_the_operators_browser_that_signed_in_before():
    """#30 item 2: three strangers kept sending wrong passwords; the operator was told "try again in 14 s"."""
    clock = FakeClock()
    throttle = SignInThrottle(free_tries=3, overall=5, overall_window=60, clock=clock)
    assert throttle.attempt("operator-browser", "office", lambda: True) == (True, 0.0)  # signed in once, earlier
    clock.now = 100.0
    for second in range(12):  # three strangers, one of them at the operator's own address, each second
        clock.now = 100.0 + second
        for stranger, address in (("s1", "addr-1"), ("s2", "addr-2"), ("s3", "office")):
            throttle.attempt(stranger, address, lambda: False)
    assert throttle.attempt("a new browser", "addr-9", lambda: True)[1] > 0  # everyone else waits a little ...
    assert throttle.attempt("s3", "office", lambda: True)[1] > 0  # ... and the strangers long
    assert throttle.attempt("operator-browser", "office", lambda: True) == (True, 0.0)  # the operator does not


def test_the_operators_browser_waits_only_for_its_own_wrong_passwords():
    clock = FakeClock()
    throttle = SignInThrottle(free_tries=2, first_wait=5, clock=clock)
    assert throttle.attempt("op", None, lambda: True) == (True, 0.0)
    assert wrong_password(throttle, "op", None) == (False, 0.0)
    assert wrong_password(throttle, "op", None) == (False, 0.0)
    assert throttle.attempt("op", None, lambda: True) == (False, 5.0)
    clock.now = 5.0
    assert throttle.attempt("op", None, lambda: True) == (True, 0.0)  # and the right password clears them
    assert wrong_password(throttle, "op", None) == (False, 0.0)


def test_a_throttled_guesser_is_logged_by_address_key_and_browser_key(caplog):
    clock = FakeClock()
    throttle = SignInThrottle(free_tries=1, clock=clock)
    key = address_key(client_address("203.0.113.7"))
    with caplog.at_level("WARNING", logger="fmnist_core.ownership"):
        wrong_password(throttle, "browser-key", key)
    assert f"address {key} (browser browser-key); it waits 2 s" in caplog.text
    assert "203.0.113.7" not in caplog.text


def test_the_client_address_is_the_peer_unless_proxies_are_trusted_and_ipv6_counts_by_its_network():
    assert client_address("203.0.113.7") == "203.0.113.7"
    assert client_address("203.0.113.7", "198.51.100.1") == "203.0.113.7"  # the header alone is not trusted
    assert client_address("10.0.0.2", "6.6.6.6, 198.51.100.1", trusted_proxies=1) == "198.51.100.1"
    assert client_address("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.3", trusted_proxies=2) == "198.51.100.1"
    assert client_address("10.0.0.2", None, trusted_proxies=1) == "10.0.0.2"  # not through the proxy
    assert client_address(None) is None and client_address("127.0.0.1") is None and client_address("::1") is None
    assert client_address("::ffff:127.0.0.1") is None and client_address("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_address("2001:db8:1:2::a") == client_address("2001:db8:1:2:ffff::b") == "2001:db8:1:2::/64"
    key = address_key("203.0.113.7")
    assert key == address_key("203.0.113.7") != address_key("203.0.113.8") and len(key) == 16
    assert address_key(None) is None
