"""The sidebar: which model Evaluate and Classify use, and a short card about it."""

from __future__ import annotations

import streamlit as st

from fmnist_core.reporting import format_duration, summarize
from fmnist_core.store import SavedModel
from views import deploy_panel, session
from views.text import plain


def _label(saved: SavedModel) -> str:
    accuracy = saved.test_accuracy
    shipped = " (shipped)" if saved.is_default else ""
    return f"{saved.name}{shipped} · {accuracy:.2%}" if accuracy is not None else f"{saved.name}{shipped}"


def model_card(saved: SavedModel) -> None:
    """Preset, key hyperparameters, size, accuracy and date of a saved model."""
    card = saved.card
    accuracy = saved.test_accuracy
    st.markdown(
        f"**Test accuracy** {'–' if accuracy is None else f'{accuracy:.2%}'}  \n"
        f"**Preset** {plain(card.get('preset') or 'custom')}  \n"
        f"**Parameters** {card.get('parameter_count', 0):,}  \n"
        f"**Trained** {saved.created_text}"
        + (f" in {format_duration(card['train_seconds'])}" if card.get("train_seconds") else "")
    )
    st.caption(summarize(saved.hyperparameters))


def _sign_in() -> None:
    refusal = session.sign_in_operator(st.session_state.pop("operator_password_input", ""))
    if refusal:
        session.flash("warning", refusal)


def _operator_panel() -> None:
    """Where the operator signs in (only on a server with an operator password); they may stop, cancel and delete
    anything (fmnist_core/ownership.py)."""
    if session.operator_password() is None:
        return
    if session.visitor().is_operator:
        st.caption("Signed in as the operator: you may stop, cancel and delete any visitor's jobs and runs.")
        st.button("Sign out", key="operator_sign_out", on_click=session.sign_out_operator)
        return
    with st.expander("Operator", icon=":material/admin_panel_settings:"):
        # A form sends the password and the press of Sign in (or Enter) as one message: a text input commits on
        # blur in a message of its own, which the Train page's live fragments (run_every) could let a rerun drop,
        # and Enter in a bare text input only commits the text.
        with st.form("operator_sign_in_form", border=False, enter_to_submit=True):
            st.text_input("Operator password", type="password", key="operator_password_input")
            st.form_submit_button("Sign in", key="operator_sign_in", on_click=_sign_in)


def render(train_page: st.Page) -> None:
    _models_panel(train_page)
    with st.sidebar:
        _operator_panel()
        session.remember_visitor()


def _models_panel(train_page: st.Page) -> None:
    models, warnings = session.list_models()
    session.choose_active_model(models)
    by_name = {saved.name: saved for saved in models}
    with st.sidebar:
        st.markdown("### Fashion-MNIST CNN Studio")
        for warning in warnings:  # they name folders and quote cards: anyone's text, shown as typed
            st.warning(plain(warning, max_chars=400))
        if not models:
            st.info("No trained model yet. Train one on the Train page; it becomes available here.")
            st.page_link(train_page, label="Go to Train", icon=":material/model_training:")
            return
        st.selectbox(
            "Active model", list(by_name), key=session.ACTIVE_MODEL_KEY, format_func=lambda name: _label(by_name[name]),
            help="The model the Evaluate and Classify pages use: the shipped default or any saved run.",
        )
        model_card(by_name[st.session_state[session.ACTIVE_MODEL_KEY]])
        deploy_panel.download_button(by_name[st.session_state[session.ACTIVE_MODEL_KEY]], key="sidebar_download")
