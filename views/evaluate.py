"""Evaluate page: the active model on the test set — metrics, confusion matrix, and its mistakes to browse."""

from __future__ import annotations

import math

import streamlit as st

from fmnist_core.data import CLASS_NAMES
from fmnist_core.store import ModelStoreError
from views import charts, explain_panel, resources, scroll, session, touch

ALL = "All"
MISTAKES_ANCHOR = "mistakes"
PAGE_SIZE = 24
TILE_WIDTH = 132  # px: a mistake's picture, caption and button together; as many per row as fit the screen
METRIC_WIDTH, MATRIX_WIDTH, TABLE_WIDTH = 160, 560, 400  # px
DETAILS_WIDTH = 300  # px: the inspected image's panel, beside the gallery where there is room, above it where not
DIALOG_KEY = "mistake_dialog"  # the tile whose Details was just pressed: shown in a dialog once
SCROLL_TO_GALLERY_KEY = "scroll_to_gallery"  # the pager under the gallery turned the page: show its top, once


def _reset_browser() -> None:
    st.session_state["mistake_page"] = 1
    st.session_state.pop("inspected_image", None)


def _on_cell_click() -> None:
    """A click on a confusion-matrix cell filters the mistakes to that (true, predicted) pair."""
    cell = charts.selected_cell(st.session_state.get("confusion"))
    if cell is None:
        return
    true_class, predicted_class = cell
    st.session_state["filter_true"] = CLASS_NAMES[true_class]
    # the diagonal holds no mistakes: show every mistake of that true class instead
    st.session_state["filter_pred"] = ALL if true_class == predicted_class else CLASS_NAMES[predicted_class]
    _reset_browser()


def _class_index(key: str) -> int | None:
    value = st.session_state.get(key, ALL)
    return None if value == ALL else CLASS_NAMES.index(value)


def _inspect(index: int) -> None:
    """Details of a tile: shown at once in a dialog, where the person is looking (the panel may be far above the
    tile), and in the panel beside or above the gallery."""
    st.session_state["inspected_image"] = st.session_state[DIALOG_KEY] = index


def _turn_page(step: int) -> None:
    """The pager under the gallery: the page before or after, from its top (the tiles above were the last page's)."""
    st.session_state["mistake_page"] = st.session_state.get("mistake_page", 1) + step
    st.session_state.pop("inspected_image", None)
    st.session_state[SCROLL_TO_GALLERY_KEY] = True


def _details(saved, evaluation, test_images, index: int, key: str) -> None:
    """One test image: enlarged, its true and predicted class, all 10 probabilities and where the evidence for each of
    the two classes lies."""
    predicted = int(evaluation.predictions[index])
    st.image(charts.enlarge(test_images[index], 6))
    st.markdown(f"Test image **#{index}**  \nTrue class: **{CLASS_NAMES[evaluation.labels[index]]}**  \n"
                f"Predicted: **{CLASS_NAMES[predicted]}**")
    st.plotly_chart(charts.probability_bars(evaluation.probabilities[index], CLASS_NAMES), key=key,
                    config=charts.CONFIG)
    explain_panel.compare_classes(saved, test_images[index], predicted, int(evaluation.labels[index]))


@st.dialog("A mistake in detail", width="medium")
def _details_dialog(saved, evaluation, test_images, index: int) -> None:
    _details(saved, evaluation, test_images, index, key="dialog_bars")


def _pager(pages: int, page: int) -> None:
    """Under the gallery: the page before and after, so a person who looked through the tiles need not go back up."""
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key="mistake_pager"):
        st.button("Previous page", key="mistakes_previous", icon=":material/chevron_left:", disabled=page <= 1,
                  on_click=_turn_page, args=(-1,))
        st.caption(f"Page {page} of {pages}", width="content")
        st.button("Next page", key="mistakes_next", icon=":material/chevron_right:", disabled=page >= pages,
                  on_click=_turn_page, args=(1,))


def _mistake_grid(saved, evaluation, test_images, indices) -> None:
    pages = max(1, math.ceil(len(indices) / PAGE_SIZE))
    if st.session_state.get("mistake_page", 1) > pages:
        st.session_state["mistake_page"] = pages
    page = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key="mistake_page",
                           width=160)
    shown = [int(i) for i in indices[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
    inspected = st.session_state.get("inspected_image")
    inspected = inspected if inspected in shown else shown[0]
    # The inspected image's panel first, then the gallery: side by side on a wide screen, one above the other on a
    # narrow one. Each tile keeps its picture, caption and button together, so on a phone nothing is orphaned.
    row = st.container(horizontal=True, wrap=True, gap="large")
    details = row.container(width=DETAILS_WIDTH, border=True)
    grid = row.container(horizontal=True, wrap=True, gap="small", width=TILE_WIDTH * 6 + 60)
    for index in shown:
        predicted = int(evaluation.predictions[index])
        tile = grid.container(width=TILE_WIDTH, border=index == inspected, gap="small")
        tile.image(charts.enlarge(test_images[index], 3), width=84)
        tile.caption(f"**{CLASS_NAMES[evaluation.labels[index]]}** → {CLASS_NAMES[predicted]} "
                     f"({evaluation.probabilities[index, predicted]:.0%})")
        tile.button("Details", key=f"inspect_{index}", icon=":material/bar_chart:",
                    type="secondary" if index == inspected else "tertiary", on_click=_inspect,
                    args=(index,), help="Show all 10 class probabilities of this image")
    with details:
        _details(saved, evaluation, test_images, inspected, key="mistake_bars")
    if pages > 1:
        _pager(pages, page)
    dialog = st.session_state.pop(DIALOG_KEY, None)
    if dialog in shown:
        _details_dialog(saved, evaluation, test_images, dialog)
    if st.session_state.pop(SCROLL_TO_GALLERY_KEY, False):
        scroll.scroll_to(".st-key-mistake_page", "start")


def render() -> None:
    st.title("Evaluate")
    saved = session.active_model()
    if saved is None:
        session.point_to_train("There is no model to evaluate yet. Train one first.")
        return
    try:
        evaluation = resources.evaluation(saved)
    except ModelStoreError as error:
        session.show_load_error(saved, error)
        return
    test_images = resources.dataset().test_images
    st.caption(f"Model **{saved.name}** on the {len(evaluation.labels):,} test images, which no model trains on.")

    mistakes_total = int((evaluation.predictions != evaluation.labels).sum())
    metrics = st.container(horizontal=True, wrap=True)  # as many side by side as fit; never cut
    metrics.metric("Test accuracy", f"{evaluation.test_accuracy:.2%}", border=True, width=METRIC_WIDTH)
    metrics.metric("Test loss", f"{evaluation.test_loss:.4f}", border=True, width=METRIC_WIDTH,
                   help="Mean cross-entropy.")
    metrics.metric("Mistakes", f"{mistakes_total:,}", border=True, width=METRIC_WIDTH)
    metrics.metric("Parameters", f"{saved.card.get('parameter_count', 0):,}", border=True, width=METRIC_WIDTH)

    true_class, predicted = _class_index("filter_true"), _class_index("filter_pred")
    indices = evaluation.misclassified_indices(true_class, predicted)  # for the link under the matrix and the gallery
    row = st.container(horizontal=True, wrap=True, gap="large")  # side by side where both fit, else stacked
    matrix, table = row.container(width=MATRIX_WIDTH), row.container(width=TABLE_WIDTH)
    with matrix:
        st.subheader("Confusion matrix")
        st.caption("Rows: the true class; columns: what the model said. Click or tap a cell to browse those mistakes.")
        # the cell of the chosen true class (outlined): its predicted class, or its diagonal for "All"
        selected = None if true_class is None else (true_class, true_class if predicted is None else predicted)
        st.plotly_chart(charts.confusion_figure(evaluation.confusion, CLASS_NAMES, selected), key="confusion",
                        on_select=_on_cell_click, selection_mode="points", config=charts.CONFIG)
        if true_class is not None:  # the mistakes are listed further down: say so where the click was
            what = "another class" if predicted is None else CLASS_NAMES[predicted]
            st.markdown(f"**{len(indices):,}** test images of {CLASS_NAMES[true_class]} taken for {what}: "
                        f"[see them below](#{MISTAKES_ANCHOR}) :material/arrow_downward:")
    with table:
        st.subheader("Per class")
        st.table([{"Class": row["class"], "Precision": f"{row['precision']:.3f}", "Recall": f"{row['recall']:.3f}",
                   "F1": f"{row['f1']:.3f}", "Images": f"{row['support']:,}"}
                  for row in evaluation.per_class(CLASS_NAMES)], hide_index=True)
        touch.one_tap_selects("confusion")  # last in this column: its empty element moves nothing

    st.subheader("Mistakes, most confident first", anchor=MISTAKES_ANCHOR)
    options = [ALL, *CLASS_NAMES]
    left, right, count = st.columns([1, 1, 2], vertical_alignment="bottom")
    left.selectbox("True class", options, key="filter_true", on_change=_reset_browser)
    right.selectbox("Predicted class", options, key="filter_pred", on_change=_reset_browser)
    count.markdown(f"**{len(indices):,}** misclassified test images")
    if len(indices) == 0:
        st.info("No mistakes with these filters.")
        return
    _mistake_grid(saved, evaluation, test_images, indices)


if __name__ == "__main__":  # run by st.navigation as the page's script; importing it runs nothing
    render()
