"""Download and export, drawn on the Runs page (and the download in the sidebar): a saved model as stored (its
`.keras` file and card), and each export format as a zip, checked by its own runtime before it is offered."""

from __future__ import annotations

import os

import streamlit as st

from fmnist_core.export import CHOICES, FORMAT_LABELS, ExportError, export_zip_in_a_process, saved_model_zip
from fmnist_core.store import ModelStoreError, SavedModel
from views import resources, session
from views.text import plain

EXPORTED_KEY = "exports_made"  # per session: {model identity: [choice, ...]} exported, in order


def _choice_label(choice: str) -> str:
    format, int8 = CHOICES[choice]
    return FORMAT_LABELS[format] + (" int8" if int8 else "")


def download_button(saved: SavedModel, key: str, label: str = "Download model (.keras + card)") -> None:
    """A button that downloads `saved` as stored, `NAME/model.keras` and `NAME/card.json` in a zip (made on click)."""
    st.download_button(label, data=lambda: saved_model_zip(saved), file_name=f"{saved.name}.zip",
                       mime="application/zip", key=key, icon=":material/download:", on_click="ignore",
                       help="The model file the app loads, with its card: copy the folder into another "
                            "installation's models/ to use it there.")


@st.cache_resource(max_entries=16, show_spinner=False)
def _export(models_root: str, name: str, modified_ns: int, format: str, int8: bool):
    """(ExportResult, zip bytes) of one export of one model version, made once per server by a process of its own
    (the converters' memory and CPU stay out of the web server) and shared (read-only)."""
    environment = {**os.environ, **resources.settings().to_environment()}
    return export_zip_in_a_process(models_root, name, format, int8, environment)


def _cached_export(saved: SavedModel, choice: str):
    format, int8 = CHOICES[choice]
    return _export(str(saved.path.parent), saved.name, saved.modified_ns, format, int8)


def _exports_table(saved: SavedModel, choices: list[str]) -> None:
    rows = []
    for choice in choices:
        result, _ = _cached_export(saved, choice)
        check = result.check
        rows.append({"format": result.label, "file size (MB)": result.size_bytes / 1e6,
                     "one image (ms)": result.latency_ms,
                     "same top class as Keras (%)": 100 * check.top_class_agreement,
                     "accuracy change (points)": check.accuracy_change_points})
    st.dataframe(rows, hide_index=True, key="exports_table", column_config={
        "file size (MB)": st.column_config.NumberColumn(format="%.2f"),
        "one image (ms)": st.column_config.NumberColumn(format="%.2f", help="median single-image latency in the "
                                                         "format's own runtime, on this server"),
        "same top class as Keras (%)": st.column_config.NumberColumn(format="%.1f"),
        "accuracy change (points)": st.column_config.NumberColumn(format="%+.2f", help="on the same 1,000 test "
                                                                  "images, against the Keras model"),
    })
    columns = st.columns(len(choices))
    for column, choice in zip(columns, choices, strict=True):
        result, data = _cached_export(saved, choice)
        column.download_button(f"Download {result.label}", data=data, file_name=f"{saved.name}-{choice}.zip",
                               mime="application/zip", key=f"download_export_{choice}", on_click="ignore",
                               icon=":material/download:")


def render(models: list[SavedModel]) -> None:
    """The Runs page's section: choose a model (the active one first), download it, export it."""
    st.subheader("Download and export")
    by_name = {saved.name: saved for saved in models}
    active = session.active_model()
    names = list(by_name)
    chosen = st.selectbox("Model", names, index=names.index(active.name) if active and active.name in by_name else 0,
                          key="export_model", help="The sidebar's active model is chosen first.")
    saved = by_name[chosen]
    download_button(saved, key="download_keras")
    choice_column, button_column = st.columns([2, 1], vertical_alignment="bottom")
    choice = choice_column.selectbox(
        "Export format", list(CHOICES), format_func=_choice_label, key="export_format",
        help="SavedModel: TensorFlow Serving's NAME/VERSION layout. LiteRT int8: weights and activations quantized "
             "with training images, about 4x smaller. Each export is loaded by its own runtime and compared with "
             "the Keras model on 1,000 test images before it is offered.",
    )
    made = st.session_state.setdefault(EXPORTED_KEY, {}).setdefault(saved.identity, [])
    if button_column.button("Export and check", key="export_button", icon=":material/package_2:"):
        try:
            with st.spinner(f"Exporting {plain(saved.name)} as {_choice_label(choice)} and checking it…"):
                _cached_export(saved, choice)
        except (ExportError, ModelStoreError) as error:
            st.error(f"The export failed: {plain(str(error), max_chars=400)}")
        else:
            if choice not in made:
                made.append(choice)
    if made:
        _exports_table(saved, made)
    st.caption("Serve a model over HTTP with `python -m fmnist_core serve NAME` (TensorFlow Serving's REST API); "
               "see the README's Deploy section.")
