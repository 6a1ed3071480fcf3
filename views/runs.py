"""Runs page: every saved model side by side, their validation curves, downloads and exports, and deleting the ones
not needed."""

from __future__ import annotations

import streamlit as st

from fmnist_core.ownership import NotYoursError
from fmnist_core.reporting import epochs_trained, format_duration, summarize
from fmnist_core.store import ModelStoreError, SavedModel
from views import charts, deploy_panel, resources, session
from views.text import count, plain

CARD_WIDTH = 330  # px: one run's card; as many side by side as the screen holds
SHOWN_KEY = "runs_shown_identities"  # each listed model's identity as this session last saw it


def _card(saved: SavedModel) -> None:
    """One saved run as a card: its measures (the same for every model: accuracy, and a test loss without label
    smoothing), how long it trained and what it is. Cards sit side by side as far as the screen allows."""
    card, accuracy, loss = saved.card, saved.test_accuracy, saved.card.get("test_loss")
    took = f" in {format_duration(card['train_seconds'])}" if card.get("train_seconds") else ""
    with st.container(border=True, width=CARD_WIDTH):
        st.markdown(f"**{plain(saved.name)}**" + (" · shipped" if saved.is_default else "")
                    + (" · yours" if session.visitor().owns(saved.owner) else ""))
        st.caption(f"{saved.hyperparameters.family} · preset {plain(card.get('preset') or 'custom')} · "
                   f"{card.get('parameter_count', 0):,} parameters")
        st.markdown(f"Test accuracy **{'–' if accuracy is None else f'{accuracy:.2%}'}** · test loss "
                    f"**{'–' if loss is None else f'{loss:.3f}'}**")
        st.caption(f"{epochs_trained(card.get('history') or [])}{took}"
                   + (f" · {saved.created_text}" if saved.created else ""))
        st.caption(summarize(saved.hyperparameters))


def _delete_chosen() -> None:
    """Button callback, run before the page is redrawn: it deletes the run the user saw chosen, even if it
    has vanished since (then it says so), never a fallback the redrawn selectbox would pick instead."""
    name = st.session_state["delete_model"]
    store = resources.model_store()
    try:
        refusal = _in_use_refusal(store.get(name))
        if refusal:
            raise ModelStoreError(refusal)
        store.delete(name, session.visitor(), identity=st.session_state.get(SHOWN_KEY, {}).get(name))
    except (ModelStoreError, NotYoursError) as error:
        session.flash("error", f"Could not delete '{plain(name)}': {plain(error, 400)}")
        return
    resources.forget_models()
    session.flash("success", f"Deleted the model '{plain(name)}'.")


def _in_use_refusal(saved: SavedModel) -> str | None:
    """Why `saved` may not be deleted now because other sessions use it, or None (who may delete it at all is the
    store's to say: ModelStore.delete refuses a visitor who is not its owner with NotYoursError)."""
    users = resources.active_models().other_users(saved.name, session.streamlit_session_id())
    if users:
        return (f"{'another open session has' if users == 1 else f'{users} other open sessions have'} it as the "
                "active model right now (another visitor's, or another tab of yours). Nothing was deleted; try again "
                "once they have moved on or closed.")
    return None


def render() -> None:
    st.title("Saved runs")
    models, _warnings = session.list_models()  # the sidebar shows the warnings
    if not models:
        session.point_to_train("No saved models yet. Every finished training run is saved here.")
        return
    st.caption("Test loss is the cross-entropy on the test set without label smoothing, so it compares across "
               "models.")
    with st.container(horizontal=True, wrap=True, key="runs_cards"):
        for saved in models:
            _card(saved)
    histories = [(saved.name, saved.card.get("history") or []) for saved in models]
    plain_loss = [(saved.name, saved.card.get("history") or []) for saved in models
                  if not saved.hyperparameters.label_smoothing]
    accuracy, loss = st.columns(2)
    accuracy.plotly_chart(charts.runs_curves(histories, "accuracy"), key="runs_accuracy", config=charts.CONFIG)
    smoothed = [saved.name for saved in models if saved.hyperparameters.label_smoothing]
    why = ("trained with label smoothing, whose validation loss is measured against softened targets and reads "
           "higher. Each card's test loss compares every model.")
    if plain_loss:
        loss.plotly_chart(charts.runs_curves(plain_loss, "loss"), key="runs_loss", config=charts.CONFIG)
        if smoothed:
            loss.caption(f"Not in the loss chart: {', '.join(map(plain, smoothed))}, {why}")
    else:  # empty axes would read as a broken chart
        loss.info(f"No validation loss chart: {'the model here was' if len(smoothed) == 1 else 'every model here was'} "
                  f"{why}", icon=":material/show_chart:")
    deploy_panel.render(models)

    st.subheader("Delete a run")
    me = session.visitor()
    deletable = [saved.name for saved in models if not saved.is_default and me.delete_refusal(saved.owner) is None]
    kept = [saved for saved in models if not saved.is_default and saved.name not in deletable]
    others = sum(1 for saved in kept if saved.owner is not None)
    if others:
        st.caption(f"{others} saved run{'s' if others > 1 else ''} of other visitors {'are' if others > 1 else 'is'} "
                   "not listed: only whoever trained a run, or the operator, may delete it.")
    if len(kept) > others:
        st.caption(f"{count(len(kept) - others, 'saved run')} with no recorded owner (trained with the command line, "
                   "or before this server told visitors apart) may be deleted by the operator only.")
    if not deletable:
        st.caption("You have no saved run to delete; the shipped default model cannot be deleted.")
        return
    choice, button = st.columns([2, 1], vertical_alignment="bottom")
    st.session_state[SHOWN_KEY] = {saved.name: saved.identity for saved in models}  # what Delete may act on
    chosen = choice.selectbox("Run to delete", deletable, key="delete_model",
                              help="The shipped default model cannot be deleted.")
    with button.popover("Delete…", icon=":material/delete:"):  # asks before it acts
        st.markdown(f"Delete **{plain(chosen)}**, its model and its card, for good?")
        st.button("Yes, delete it", key="delete_button", type="primary", on_click=_delete_chosen)


if __name__ == "__main__":  # run by st.navigation as the page's script; importing it runs nothing
    render()
