"""The visitor's session (`st.session_state`, set up in one place): who they are (a cookie keeps their id across
reloads), whether they signed in as the operator, the model they use, and messages shown once after a rerun."""

from __future__ import annotations

import math
import re
import secrets
import uuid

import streamlit as st

from fmnist_core.ownership import (
    VISITOR_COOKIE,
    Visitor,
    address_key,
    client_address,
    operator_token,
    owner_key,
    password_matches,
)
from fmnist_core.store import SavedModel
from views import resources
from views.text import plain

ACTIVE_MODEL_KEY = "active_model"  # the sidebar selectbox
PENDING_ACTIVE_MODEL_KEY = "pending_active_model"  # set by pages, applied before the selectbox is drawn
_MODELS_KEY = "_saved_models"  # the listing the sidebar made this run, for the pages
_ACTIVE_IDENTITY_KEY = "_active_model_identity"  # the active model as this session last saw it
_VISITOR_ID_KEY = "_visitor_id"
ADDRESS_KEY = "_address_key"  # the address_key of this session's network address (None: this machine)
_OPERATOR_KEY = "_operator"
_VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
VISITOR_COOKIE_DAYS = 365


def init_session() -> None:
    """Defaults every page relies on; called once per run by the entry script. A new session is watched, so that
    what it holds (its uploads, up to 30 MB, and its state) is freed within a minute of its visitor leaving
    (resources.closed_sessions), not only when Streamlit drops it as another session disconnects 2 minutes later."""
    if "session_id" not in st.session_state:
        st.session_state["session_id"] = uuid.uuid4().hex[:12]
        resources.closed_sessions().track(streamlit_session_id())
    st.session_state.setdefault("flash", [])


def session_id() -> str:
    init_session()
    return st.session_state["session_id"]


def streamlit_session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    return context.session_id if context else session_id()


# ---- who the visitor is -----------------------------------------------------------------------------
def _visitor_id() -> str:
    """This browser's random id: from its cookie, or made now (and given to the browser by `remember_visitor`)."""
    if _VISITOR_ID_KEY not in st.session_state:
        cookie = (st.context.cookies or {}).get(VISITOR_COOKIE, "")
        st.session_state[_VISITOR_ID_KEY] = cookie if _VISITOR_ID.fullmatch(cookie) else secrets.token_urlsafe(18)
    return st.session_state[_VISITOR_ID_KEY]


def _address_key() -> str | None:
    """The key of this visitor's network address (`client_address`: the connection's, or behind the reverse proxies
    the settings trust, from X-Forwarded-For), found once per session; None on this machine."""
    if ADDRESS_KEY not in st.session_state:
        headers = st.context.headers
        forwarded_for = ", ".join(headers.get_all("X-Forwarded-For")) if headers else None
        address = client_address(st.context.ip_address, forwarded_for, resources.settings().trusted_proxies)
        st.session_state[ADDRESS_KEY] = address_key(address)
    return st.session_state[ADDRESS_KEY]


def remember_visitor() -> None:
    """Keep this browser's visitor id in a cookie, so a reload is the same visitor. Streamlit's cookies are read-only,
    so a script writes it (the id is ours: [A-Za-z0-9_-] only). Drawn on every run, in the same place (the sidebar's
    end): an element that appeared only once would shift the page's elements on the next run, and Streamlit would
    redraw them afresh (a tab chosen, a slider being moved)."""
    st.html(f"<script>document.cookie = '{VISITOR_COOKIE}={_visitor_id()}; path=/; "
            f"max-age={VISITOR_COOKIE_DAYS * 86400}; SameSite=Lax';</script>", unsafe_allow_javascript=True)


def operator_password() -> str | None:
    """The operator's password, from the server's settings (the environment, else `.streamlit/secrets.toml`)."""
    return resources.settings().operator_password


def sign_in_operator(password: str) -> str | None:
    """Make this session the operator's if `password` is right: None; else why not, as the page says it (a wrong
    password, or too many wrong ones lately on this server: how long to wait; the password is then not checked)."""
    expected = operator_password()
    me = visitor()
    signed_in, wait = resources.sign_in_throttle().attempt(me.key, me.address,
                                                           lambda: password_matches(password, expected))
    if signed_in:
        st.session_state[_OPERATOR_KEY] = operator_token(expected)
        return None
    if wait > 0:
        return (f"Too many wrong operator passwords were tried lately, so this one was not checked: try again in "
                f"{_minutes_or_seconds(wait)}. (A browser that has signed in as the operator before never waits "
                "for other people's wrong passwords.)")
    return "That is not the operator password; you can still use everything that is yours."


def _minutes_or_seconds(seconds: float) -> str:
    return f"{math.ceil(seconds / 60)} min" if seconds >= 60 else f"{math.ceil(seconds)} s"


def sign_out_operator() -> None:
    st.session_state[_OPERATOR_KEY] = None


def visitor() -> Visitor:
    """Who this session is, for the ownership policy (fmnist_core/ownership.py), which the core enforces."""
    password = operator_password()
    signed_in = password is not None and st.session_state.get(_OPERATOR_KEY) == operator_token(password)
    return Visitor(owner_key(_visitor_id()), is_operator=signed_in, operator_configured=password is not None,
                   address=_address_key())


def whose(owner: str) -> str:
    """A job's owner as its page's caption says it."""
    return "yours" if visitor().owns(owner) else "started by another visitor"


# ---- messages shown once ------------------------------------------------------------------------
def flash(kind: str, message: str) -> None:
    """A message shown once on the next run (after an st.rerun()), e.g. 'Deleted …'."""
    st.session_state.setdefault("flash", []).append((kind, message))


def show_flashes() -> None:
    for kind, message in st.session_state.pop("flash", []):
        getattr(st, kind)(message)
    st.session_state["flash"] = []


def show_load_error(saved: SavedModel, error: Exception) -> None:
    """The one message for a saved model that cannot be loaded (the store's error says why and what to do)."""
    st.error(f"The model '{plain(saved.name)}' could not be loaded: {plain(error, 600)}")


def point_to_train(message: str) -> None:
    """Tell the user why the page is empty and link to the Train page, where a model is made."""
    st.info(message)
    st.page_link("views/train.py", label="Go to Train", icon=":material/model_training:")


# ---- the active model ----------------------------------------------------------------------------
def list_models() -> tuple[list[SavedModel], list[str]]:
    """The store's models and broken-folder warnings, read fresh (cheap: a few small JSON cards)."""
    models, warnings = resources.model_store().list_models()
    st.session_state[_MODELS_KEY] = models
    return models, warnings


def choose_active_model(models: list[SavedModel]) -> None:
    """Before the sidebar selectbox is drawn: apply a pending choice, or repair a vanished or replaced one and
    say so (another visitor may delete the model this session uses, or save a new one under its name)."""
    identities = {saved.name: saved.identity for saved in models}
    pending = st.session_state.pop(PENDING_ACTIVE_MODEL_KEY, None)
    active = st.session_state.get(ACTIVE_MODEL_KEY)
    seen = st.session_state.get(_ACTIVE_IDENTITY_KEY)
    if pending in identities:
        active = pending
    elif active not in identities:
        fallback = next(iter(identities), None)
        if active is not None:
            flash("warning", f"The model {plain(active)} you were using was deleted by someone else; "
                             + (f"now using {plain(fallback)}." if fallback else "no model is left."))
        active = fallback
    elif seen is not None and seen[0] == active and tuple(seen) != identities[active]:
        flash("warning", f"The model {plain(active)} was replaced by another run saved under the same name; "
                         "the pages now show the new one.")
    st.session_state[ACTIVE_MODEL_KEY] = active
    st.session_state[_ACTIVE_IDENTITY_KEY] = identities.get(active)
    resources.active_models().use(streamlit_session_id(), active)


def use_model(name: str) -> None:
    """Make `name` the active model from the next run on (the selectbox is already drawn in this one)."""
    st.session_state[PENDING_ACTIVE_MODEL_KEY] = name


def active_model() -> SavedModel | None:
    """The model chosen in the sidebar, or None when the store is empty."""
    models = st.session_state.get(_MODELS_KEY)
    if models is None:
        models, _ = list_models()
    name = st.session_state.get(ACTIVE_MODEL_KEY)
    return next((saved for saved in models if saved.name == name), models[0] if models else None)
