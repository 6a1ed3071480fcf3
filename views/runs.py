"""Runs page: every saved model side by side, their validation curves, downloads and exports, and deleting the ones
not needed."""

from __future__ import annotations

import streamlit as st

from fmnist_core.reporting import full_epochs, summarize
from fmnist_core.store import ModelStore, ModelStoreError, SavedModel
from views import charts, deploy_panel, state
from views.text import plain

SHOWN_KEY = "runs_shown_identities"  # each listed model's identity as this session last saw it


def _row(saved: SavedModel) -> dict:
    card = saved.card
    created = saved.created
    history = card.get("history") or []
    # the long hyperparameter summary comes last, so a narrow table cuts that text rather than the numbers
    return {
        "name": saved.name + (" (shipped)" if saved.is_default else ""),
        "family": saved.hyperparameters.family,  # CNN, MLP or softmax regression, side by side
        "preset": card.get("preset") or "custom",
        "test accuracy (%)": None if saved.test_accuracy is None else 100 * saved.test_accuracy,
        "parameters": card.get("parameter_count"),
        "epochs": "{} + part of one".format(*full_epochs(history)) if full_epochs(history)[1]
        else str(full_epochs(history)[0]),
        "test loss": card.get("test_loss"),  # plain cross-entropy for every model, whatever its label smoothing
        "training time (s)": card.get("train_seconds"),
        "date": created,
        "hyperparameters": summarize(saved.hyperparameters),
    }


def _delete_chosen() -> None:
    """Button callback, run before the page is redrawn: it deletes the run the user saw chosen, even if it
    has vanished since (then it says so), never a fallback the redrawn selectbox would pick instead."""
    name = st.session_state["delete_model"]
    try:
        ModelStore().delete(name, identity=st.session_state.get(SHOWN_KEY, {}).get(name))
    except ModelStoreError as error:
        state.flash("error", f"Could not delete '{plain(name)}': {plain(error, 400)}")
        return
    state.forget_models()
    state.flash("success", f"Deleted the model '{plain(name)}'.")


def render() -> None:
    st.title("Saved runs")
    models, _warnings = state.list_models()  # the sidebar shows the warnings
    if not models:
        state.point_to_train("No saved models yet. Every finished training run is saved here.")
        return
    st.dataframe(
        [_row(saved) for saved in models], hide_index=True, key="runs_table",
        column_config={
            "test accuracy (%)": st.column_config.NumberColumn(format="%.2f"),
            "training time (s)": st.column_config.NumberColumn(format="%.0f"),
            "test loss": st.column_config.NumberColumn(format="%.3f", help="Cross-entropy on the test set without "
                                                       "label smoothing, so it compares across models."),
            "parameters": st.column_config.NumberColumn(format="localized"),
            "date": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "hyperparameters": st.column_config.TextColumn(width="large"),
        },
    )
    histories = [(saved.name, saved.card.get("history") or []) for saved in models]
    plain_loss = [(saved.name, saved.card.get("history") or []) for saved in models
                  if not saved.hyperparameters.label_smoothing]
    accuracy, loss = st.columns(2)
    accuracy.plotly_chart(charts.runs_curves(histories, "accuracy"), key="runs_accuracy", config=charts.CONFIG)
    loss.plotly_chart(charts.runs_curves(plain_loss, "loss"), key="runs_loss", config=charts.CONFIG)
    smoothed = [saved.name for saved in models if saved.hyperparameters.label_smoothing]
    if smoothed:
        loss.caption(f"Not in the loss chart: {', '.join(map(plain, smoothed))}, trained with label smoothing, whose "
                     "validation loss is measured against softened targets and reads higher. The table's test loss "
                     "compares every model.")
    deploy_panel.render(models)

    st.subheader("Delete a run")
    deletable = [saved.name for saved in models if not saved.is_default]
    if not deletable:
        st.caption("Only the shipped default model is saved, and it cannot be deleted.")
        return
    choice, button = st.columns([2, 1], vertical_alignment="bottom")
    st.session_state[SHOWN_KEY] = {saved.name: saved.identity for saved in models}  # what Delete may act on
    chosen = choice.selectbox("Run to delete", deletable, key="delete_model",
                              help="The shipped default model cannot be deleted.")
    with button.popover("Delete…", icon=":material/delete:"):  # asks before it acts
        st.markdown(f"Delete **{plain(chosen)}**, its model and its card, for good?")
        st.button("Yes, delete it", key="delete_button", type="primary", on_click=_delete_chosen)


render()
