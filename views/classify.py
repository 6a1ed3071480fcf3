"""Classify page: draw an item or upload pictures, and see what the active model makes of them."""

from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.uploaded_file_manager import UploadedFile

from fmnist_core.data import CLASS_NAMES
from fmnist_core.drawings import BRUSH_RANGE, CANVAS_SIDE
from fmnist_core.memory import release_free_memory
from fmnist_core.preprocessing import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_FILES,
    MAX_UPLOAD_TOTAL_BYTES,
    UPLOAD_ENDINGS,
    ImageDecodeError,
    PreparedImage,
    prepare_drawing,
    prepare_upload,
)
from fmnist_core.reporting import percentages_apart
from fmnist_core.store import ModelStoreError, SavedModel
from fmnist_core.unsure import unsure_reason
from views import charts, explain_panel, resources, session, touch
from views.text import plain

NOT_AN_ITEM = "Unsure"  # short enough for the metric at every width; the warning below says why
DRAWING_HINT = ("Draw one item of clothing on the white square: a T-shirt, trousers, a dress, a bag, a shoe… "
                "An outline works (its inside is filled in, as Fashion-MNIST items are solid), and so does a "
                "coloured-in shape. Big and centred reads best. To take back the last stroke, press Undo (↶) under "
                "the square; Clear starts again.")
UPLOADS_KEY = "uploads"
FILLED_NOTE = "The inside of your outline was filled in, as Fashion-MNIST items are solid."
UPLOAD_RESULTS_KEY = "upload_results"  # file id -> PreparedImage or the ImageDecodeError it raised
PICTURE_WIDTH, ANSWER_WIDTH, BARS_WIDTH = 150, 210, 340  # px: the parts of an answer, side by side where they fit


def show_prediction(saved: SavedModel, classifier, model_input: np.ndarray, key: str, original=None,
                    note: str = "", item_note: str = "", why_into: DeltaGenerator | None = None) -> None:
    """What the model received, its answer and all 10 probabilities for one input; on request, why (in `why_into`
    if given: a wider place than the answer's). `item_note` is shown only when the answer is an item (e.g. how an
    outline was filled in, which means nothing for a scribble)."""
    answer = classifier.answer(model_input, saved.unsure_below)
    note = " ".join(filter(None, [note, item_note if answer.confident else ""]))
    probabilities, top = answer.probabilities, answer.top
    # A row of fixed-width parts that wraps where the page is narrow (a phone, a 1024 px laptop beside the canvas),
    # instead of columns that squeeze the answer to "T…". The answer comes first, so on a phone it is in view
    # right under the drawing.
    row = st.container(horizontal=True, gap="medium", vertical_alignment="center")
    answer_box = row.container(width=ANSWER_WIDTH)
    if original is not None:
        row.container(width=PICTURE_WIDTH).image(original, caption="Original", width="stretch")
    row.container(width=PICTURE_WIDTH).image(charts.enlarge(model_input, 5), caption="What the model sees (28x28)")
    with answer_box:
        if answer.confident:
            st.metric("Prediction", CLASS_NAMES[top], delta=f"{probabilities[top]:.1%} probability",
                      delta_color="off", delta_arrow="off")
        else:  # no confident class: the best guess is named in the note below, not as the answer
            st.metric("Prediction", NOT_AN_ITEM, delta="no class fits", delta_color="off", delta_arrow="off")
        if note:
            st.caption(note)
    row.container(width=BARS_WIDTH).plotly_chart(charts.probability_bars(probabilities, CLASS_NAMES),
                                                 key=f"bars_{key}", config=charts.CONFIG)
    if not answer.confident:
        best, trusted = percentages_apart(float(probabilities[top]), answer.unsure_below)
        reason = unsure_reason(model_input, probabilities, original)
        st.warning(f"This does not look like an item of clothing to the model, or it cannot tell which: its best "
                   f"guess, {CLASS_NAMES[top]}, has only {best} (it trusts {trusted} or more). {reason.message}",
                   icon=":material/help:")
    if st.toggle("Why? Show what the model looks at", key=f"why_{key}",
                 help="Grad-CAM heatmap, the feature maps of each conv block and the first layer's filters"):
        with why_into or st.container():
            explain_panel.why(saved, model_input, top, key)


def _classifier(saved: SavedModel):
    try:
        return resources.classifier(saved)
    except ModelStoreError as error:
        session.show_load_error(saved, error)
        return None


def _clear_canvas() -> None:
    st.session_state["canvas_generation"] = st.session_state.get("canvas_generation", 0) + 1


@st.fragment
def _drawing(saved: SavedModel) -> None:
    """The canvas and its prediction; a fragment, so each stroke reruns only this part."""
    st.session_state.setdefault("stroke_width", 18)
    row = st.container(horizontal=True, gap="large")
    canvas, result = row.container(width=CANVAS_SIDE + 8), row.container()  # all 280 px and the border, at any width
    why = st.container()  # under both: beside the canvas, a laptop leaves the panel a third of the page
    # imported here: the component registers itself when imported, which needs a running Streamlit app
    from streamlit_drawable_canvas import st_canvas

    with canvas:
        drawing = st_canvas(
            stroke_width=st.session_state["stroke_width"], stroke_color="#000000", background_color="#FFFFFF",
            height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw", return_image_data=True,
            key=f"canvas_{st.session_state.get('canvas_generation', 0)}",
        )
        with st.container(horizontal=True, vertical_alignment="bottom", gap="medium"):  # one row: the answer is near
            st.slider("Brush width", min_value=BRUSH_RANGE[0], max_value=BRUSH_RANGE[1], key="stroke_width", width=150)
            st.button("Clear", key="clear_canvas", icon=":material/delete:", on_click=_clear_canvas,
                      help="Clear the drawing")
    with result:
        prepared = prepare_drawing(drawing.image_data)
        if prepared is None:
            st.info(DRAWING_HINT, icon=":material/draw:")
            return
        classifier = _classifier(saved)
        if classifier is not None:
            show_prediction(saved, classifier, prepared.model_input, key="drawing",
                            item_note=FILLED_NOTE if prepared.filled else "", why_into=why)
            st.caption(DRAWING_HINT)


def _prepared(file) -> PreparedImage | ImageDecodeError:
    """The upload decoded once per file and kept in the session (a rerun does not decode it again)."""
    results = st.session_state.setdefault(UPLOAD_RESULTS_KEY, {})
    if file.file_id not in results:
        try:
            results[file.file_id] = prepare_upload(file.getvalue(), file.name)
        except ImageDecodeError as error:
            results[file.file_id] = error
        release_free_memory(collect_garbage=False)  # the decoded full-size picture is garbage now
    return results[file.file_id]


def _within_limits(files: list) -> tuple[list, list]:
    """The files that fit this session's limits (in upload order), and the rest."""
    taken, total = [], 0
    for file in files:
        if len(taken) < MAX_UPLOAD_FILES and total + file.size <= MAX_UPLOAD_TOTAL_BYTES:
            taken.append(file)
            total += file.size
    return taken, [file for file in files if file not in taken]


def _name_lost_uploads() -> None:
    """Say so when the uploader lists files this server does not hold: uploaded before the server restarted.

    Streamlit hands the page only the files it holds; the browser keeps listing the others, whose results vanish
    at the next upload (#19 item 11). The widget's state names them as entries that are not uploaded files.
    """
    lost = sum(not isinstance(entry, UploadedFile) for entry in st.session_state.get(UPLOADS_KEY) or [])
    if lost:
        st.warning(f"{lost} of the pictures listed above {'was' if lost == 1 else 'were'} uploaded before the server "
                   "restarted and the server no longer has them, so they have no result: remove them (× beside "
                   "each name) and upload them again.", icon=":material/restart_alt:")


# The uploader refuses a file over the size limit or of another type in the browser, before the app sees it, and
# gives the reason only to screen readers and as a tooltip (no hover on a phone). Shown under the file's name
# instead, in the uploader's own box, which grows to show it rather than scroll.
REFUSED_FILE_REASON_CSS = """<style>
[data-testid="stFileChips"]:has([aria-invalid="true"]) { max-height: none; }
[data-testid="stFileChip"][aria-invalid="true"] { flex-wrap: wrap; height: auto; }
[data-testid="stFileChip"][aria-invalid="true"] [role="alert"] {
  position: static !important; width: 100% !important; height: auto !important; margin: 0 !important;
  clip: auto !important; clip-path: none !important; overflow: visible !important; white-space: normal !important;
  color: var(--st-red-text-color, #bd4043); font-size: 0.8rem; order: 10; }
</style>"""


def _uploads(saved: SavedModel) -> None:
    st.html(REFUSED_FILE_REASON_CSS)
    files = st.file_uploader(
        f"Pictures of clothing (up to {MAX_UPLOAD_BYTES / 1e6:g} MB each, {MAX_UPLOAD_FILES} pictures and "
        f"{MAX_UPLOAD_TOTAL_BYTES / 1e6:g} MB at once)", type=list(UPLOAD_ENDINGS), accept_multiple_files=True,
        key=UPLOADS_KEY, max_upload_size=MAX_UPLOAD_BYTES // 1_000_000)
    _name_lost_uploads()
    if not files:
        st.session_state.pop(UPLOAD_RESULTS_KEY, None)
        st.caption("One item per picture on a plain background works best; you can upload several at once.")
        return
    files, refused = _within_limits(files)
    if refused:
        st.warning(f"Not read: {', '.join(plain(file.name, 40) for file in refused)}. At most {MAX_UPLOAD_FILES} "
                   f"pictures and {MAX_UPLOAD_TOTAL_BYTES / 1e6:g} MB are read at once: remove some (× beside each "
                   "name) and add these again.")
    kept = {file.file_id for file in files}  # results of removed files are dropped with them
    results = st.session_state.setdefault(UPLOAD_RESULTS_KEY, {})
    for file_id in [file_id for file_id in results if file_id not in kept]:
        del results[file_id]
    classifier = _classifier(saved)
    if classifier is None:
        return
    for position, file in enumerate(files):
        with st.container(border=True, key=f"upload_result_{position}"):
            st.markdown(f"**{plain(file.name)}**")
            prepared = _prepared(file)
            if isinstance(prepared, ImageDecodeError):
                st.error(f"Could not classify this file. {plain(prepared, 400)}")
                continue
            notes = ["Light background: inverted to light-on-dark, like Fashion-MNIST." if prepared.inverted else "",
                     f"The file holds {prepared.frames} pictures (frames or pages): the first was classified."
                     if prepared.frames > 1 else ""]
            note = " ".join(filter(None, notes))
            show_prediction(saved, classifier, prepared.model_input, key=f"upload_{file.file_id}",
                            original=prepared.original, note=note)


def render() -> None:
    st.title("Classify")
    saved = session.active_model()
    if saved is None:
        session.point_to_train("There is no model to classify with yet. Train one first.")
        return
    st.caption(f"Using model **{saved.name}**. Pick another in the sidebar.")
    if not saved.card.get("hyperparameters", {}).get("non_item_fraction"):
        st.caption("This model was not taught pictures of other things (its training had no non-items), so it names "
                   "anything, a cup or a cat too, as one of the ten kinds of clothing. Models trained with "
                   "non-items, as the quick and best presets are, answer “Unsure” instead.")
    draw, upload = st.tabs(["Draw", "Upload pictures"])
    with draw:
        _drawing(saved)
    with upload:
        _uploads(saved)
    touch.swipes_scroll_over_sliders()
    touch.canvas_toolbar_under_the_square()


if __name__ == "__main__":  # run by st.navigation as the page's script; importing it runs nothing
    render()
