"""Who may do what on a shared server: the policy in one place.

- A visitor is recognised by a random id their browser keeps (a cookie, set by the app); only a key derived from
  it (`owner_key`) is ever stored, in the job queue and on model cards, so neither reveals the id itself.
- A browser is easy to change (clear the cookie), a network address less so: the queue's limits and the sign-in
  throttle count both. Only a key of the address (`address_key`) is stored and logged; it keeps raw addresses out
  of the queue and the logs, though one who has the key can still find an IPv4 address by trying them all.
- A job (run or sweep) and the model a run saves belong to the visitor who submitted the job. Anyone may watch
  a job; only its owner may stop it or take it out of the queue, and only a model's owner may delete it.
- Models with no owner (the shipped one is never deletable; the CLI's have no owner) may be deleted by anyone
  while no operator is set, and by the operator alone once one is.
- The operator, who knows the password set in one place (OPERATOR_PASSWORD_VARIABLE, or `operator_password` in
  `.streamlit/secrets.toml`), may stop, cancel and delete anything.
- A model another session has active is never deleted from under it: `ActiveModels` knows which session uses
  which model, and a delete is refused while another live session uses it (the operator too is refused).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

OPERATOR_PASSWORD_VARIABLE = "FMNIST_OPERATOR_PASSWORD"
VISITOR_COOKIE = "fmnist_visitor"

_log = logging.getLogger(__name__)


def owner_key(visitor_id: str) -> str:
    """What is stored as a job's or model's owner: a one-way key of the visitor's browser id."""
    return hashlib.sha256(f"fmnist-visitor:{visitor_id}".encode()).hexdigest()[:16]


def client_address(peer: str | None, forwarded_for: str | None = None, trusted_proxies: int = 0) -> str | None:
    """The visitor's network address as far as this server can trust it; None for this machine itself.

    With no proxy in front (`trusted_proxies` 0) it is the connection's peer. Behind `trusted_proxies` reverse
    proxies it is the address the outermost of them saw: that many entries from the right of X-Forwarded-For (each
    proxy appends the address it was reached from; entries further left are whatever the client wrote). A header
    with fewer entries did not come through the proxies, and the peer is used. An IPv6 address stands for its /64
    network, which one home or device usually has to itself."""
    entries = [entry.strip() for entry in (forwarded_for or "").split(",") if entry.strip()]
    raw = entries[-trusted_proxies] if trusted_proxies and len(entries) >= trusted_proxies else peer
    if not raw:
        return None
    try:
        address = ipaddress.ip_address(raw.strip("[]"))
    except ValueError:  # a port, or something that is no address: kept as written, so it still has a key
        return raw
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def address_key(address: str | None) -> str | None:
    """What is stored and logged for a network address (`client_address`): a one-way key, never the address."""
    return None if address is None else hashlib.sha256(f"fmnist-address:{address}".encode()).hexdigest()[:16]


def password_matches(given: str, expected: str | None) -> bool:
    """True when an operator password is set and `given` is it (compared in constant time)."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def operator_token(password: str) -> str:
    """What a signed-in session keeps: valid only while the operator password is this one (a change or removal of
    the password signs every operator out)."""
    return hmac.new(password.encode(), b"fmnist-operator", "sha256").hexdigest()


class NotYoursError(PermissionError):
    """A visitor tried to stop, cancel or delete what another visitor owns; the message says whose it is and who may."""


@dataclass(frozen=True)
class Visitor:
    key: str  # owner_key of their browser id
    is_operator: bool = False
    operator_configured: bool = False  # whether this server has an operator password at all
    address: str | None = None  # address_key of their network address (None: this machine, the command line)

    @classmethod
    def command_line(cls) -> Visitor:
        """Whoever runs the command line on the server: they own its files, so they act as the operator."""
        return cls(key="command-line", is_operator=True)

    def owns(self, owner: str | None) -> bool:
        return owner is not None and owner == self.key

    def may_control(self, owner: str) -> bool:
        """May stop or cancel a job of `owner`."""
        return self.is_operator or self.owns(owner)

    def delete_refusal(self, owner: str | None) -> str | None:
        """Why this visitor may not delete a model of `owner` (None: they may)."""
        if self.is_operator or self.owns(owner):
            return None
        if owner is None:
            return None if not self.operator_configured else (
                "it was not trained from this app by you (the command line's models have no owner), and on this "
                "server only the operator may delete such models.")
        return "another visitor trained it; only they, or the operator, may delete it."


class ActiveModels:
    """Which live session has which model active, server-wide; thread-safe.

    `is_alive(session_id)` tells whether a session is still connected (the app passes Streamlit's runtime
    check), so a closed tab does not hold a model for ever."""

    def __init__(self, is_alive: Callable[[str], bool]):
        self._is_alive = is_alive
        self._models: dict[str, str] = {}
        self._lock = threading.Lock()

    def use(self, session_id: str, model_name: str | None) -> None:
        with self._lock:
            if model_name is None:
                self._models.pop(session_id, None)
            else:
                self._models[session_id] = model_name

    def other_users(self, model_name: str, session_id: str) -> int:
        """How many live sessions other than `session_id` have `model_name` active (closed ones are forgotten)."""
        with self._lock:
            for closed in [sid for sid in self._models if not self._is_alive(sid)]:
                del self._models[closed]
            return sum(1 for sid, name in self._models.items() if name == model_name and sid != session_id)


class SignInThrottle:
    """Wrong operator passwords: whoever guesses waits longer and longer; the operator's own browser does not wait.

    Wrong passwords are counted per network address (its `address_key`) and per browser (its owner key). Each may be
    wrong `free_tries` times; every further wrong password doubles its wait, from `first_wait` seconds up to
    `max_wait`, and a key with no wrong password for `forget_after` seconds starts afresh. While a key waits, its
    passwords are not checked. All untrusted browsers together may be wrong `overall` times in `overall_window`
    seconds (a guesser with many addresses), then they wait until the oldest of those leaves the window.

    A browser that has signed in as the operator is trusted: other browsers' wrong passwords, from its address or
    from anywhere, never make it wait; only its own do. A right password clears that browser's count (not its
    address's: a guesser may share the address). Everyone made to wait is logged by address key and owner key,
    never by raw address. Thread-safe: the check and the count are one step. Kept in memory: a restart forgets it.
    """

    def __init__(self, free_tries: int = 3, first_wait: float = 2.0, max_wait: float = 900.0,
                 forget_after: float = 3600.0, overall: int = 30, overall_window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.free_tries, self.first_wait, self.max_wait = free_tries, first_wait, max_wait
        self.forget_after = max(forget_after, max_wait)
        self.overall, self.overall_window = overall, overall_window
        self._clock = clock
        self._strikes: dict[str, tuple[int, float]] = {}  # "address:<key>" or "browser:<key>" -> (wrong, last at)
        self._recent: list[float] = []  # when untrusted browsers were wrong, oldest first
        self._trusted: set[str] = set()  # owner keys of browsers that signed in as the operator
        self._lock = threading.Lock()

    def attempt(self, browser_key: str, address_key: str | None,
                password_matches: Callable[[], bool]) -> tuple[bool, float]:
        """(signed in, seconds to wait): `password_matches()` is asked only when this browser and address may try
        now (`address_key` None: this machine, or an address the server cannot tell)."""
        with self._lock:
            now = self._clock()
            self._forget(now)
            trusted = browser_key in self._trusted
            keys = [f"browser:{browser_key}"]
            if address_key is not None and not trusted:
                keys.append(f"address:{address_key}")
            wait = max([self._wait(key, now) for key in keys] + [0.0 if trusted else self._overall_wait(now)])
            if wait > 0:
                return False, wait
            if password_matches():
                self._strikes.pop(keys[0], None)
                self._trusted.add(browser_key)
                return True, 0.0
            for key in keys:
                wrong, _ = self._strikes.get(key, (0, now))
                self._strikes[key] = (wrong + 1, now)
            if not trusted:
                self._recent.append(now)
            wait = max([self._wait(key, now) for key in keys] + [0.0 if trusted else self._overall_wait(now)])
            if wait > 0:
                _log.warning("operator sign-in: wrong password from address %s (browser %s); it waits %.0f s before "
                             "its next try", address_key or "local", browser_key, wait)
            return False, 0.0

    def _wait(self, key: str, now: float) -> float:
        wrong, last = self._strikes.get(key, (0, now))
        if wrong < self.free_tries:
            return 0.0
        delay = min(self.first_wait * 2 ** (wrong - self.free_tries), self.max_wait)
        return max(last + delay - now, 0.0)

    def _overall_wait(self, now: float) -> float:
        if len(self._recent) < self.overall:
            return 0.0
        return max(self._recent[-self.overall] + self.overall_window - now, 0.0)

    def _forget(self, now: float) -> None:
        self._strikes = {key: (wrong, last) for key, (wrong, last) in self._strikes.items()
                         if now - last < self.forget_after}
        self._recent = [when for when in self._recent if now - when < self.overall_window]
