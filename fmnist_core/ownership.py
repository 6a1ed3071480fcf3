"""Who may do what on a shared server: the policy in one place.

- A visitor is recognised by a random id their browser keeps (a cookie, set by the app); only a key derived from
  it (`owner_key`) is ever stored, in the job queue and on model cards, so neither reveals the id itself.
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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

OPERATOR_PASSWORD_VARIABLE = "FMNIST_OPERATOR_PASSWORD"
VISITOR_COOKIE = "fmnist_visitor"


def owner_key(visitor_id: str) -> str:
    """What is stored as a job's or model's owner: a one-way key of the visitor's browser id."""
    return hashlib.sha256(f"fmnist-visitor:{visitor_id}".encode()).hexdigest()[:16]


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
    """Wrong operator passwords, counted server-wide, so that the password cannot be guessed by trying many.

    A visitor (by owner key) may get it wrong `per_visitor` times in `visitor_window` seconds; all visitors together
    `overall` times in `overall_window` seconds (a new browser id per try gets round the first limit, not the
    second). Past a limit, sign-in waits until the oldest failure counted leaves its window, and the password is not
    checked meanwhile. The overall window is short, so that nobody can keep the operator out for longer than they
    keep sending wrong passwords at that rate. A right password clears that visitor's failures. Thread-safe: the
    check and the count are one step."""

    def __init__(self, per_visitor: int = 5, visitor_window: float = 600.0, overall: int = 30,
                 overall_window: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.per_visitor, self.visitor_window = per_visitor, visitor_window
        self.overall, self.overall_window = overall, overall_window
        self._clock = clock
        self._failures: list[tuple[float, str]] = []  # (when, visitor key), oldest first
        self._lock = threading.Lock()

    def attempt(self, visitor_key: str, password_matches: Callable[[], bool]) -> tuple[bool, float]:
        """(signed in, seconds to wait): `password_matches()` is asked only when `visitor_key` may try now."""
        with self._lock:
            now = self._clock()
            keep = max(self.visitor_window, self.overall_window)
            self._failures = [(when, key) for when, key in self._failures if now - when < keep]
            wait = self._wait(visitor_key, now)
            if wait > 0:
                return False, wait
            if password_matches():
                self._failures = [(when, key) for when, key in self._failures if key != visitor_key]
                return True, 0.0
            self._failures.append((now, visitor_key))
            return False, 0.0

    def _wait(self, visitor_key: str, now: float) -> float:
        mine = [when for when, key in self._failures if key == visitor_key and now - when < self.visitor_window]
        recent = [when for when, _ in self._failures if now - when < self.overall_window]
        waits = [0.0]
        if len(mine) >= self.per_visitor:
            waits.append(mine[-self.per_visitor] + self.visitor_window - now)
        if len(recent) >= self.overall:
            waits.append(recent[-self.overall] + self.overall_window - now)
        return max(waits)
