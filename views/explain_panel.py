"""Look-inside panels the Classify and Evaluate pages share: class activation maps (HiResCAM, or Grad-CAM on
request), feature maps and first-layer filters.

Not a page of its own; the algorithms are in fmnist_core.explain, this module only draws their results.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from fmnist_core.data import CLASS_NAMES
from fmnist_core.store import ModelStoreError, SavedModel
from views import charts, resources, session

GRID_COLUMNS = 16
HEATMAP_SIDE, NOTE_WIDTH = 224, 420  # px: the map at 8x, and its controls and note
METHOD_NAMES = {"hirescam": "HiResCAM", "gradcam": "Grad-CAM"}
METHOD_LABELS = {"hirescam": "HiResCAM (default, faithful per position)", "gradcam": "Grad-CAM (classic)"}
METHOD_HELP = ("HiResCAM weighs every position by its own gradient, so it shows exactly where the score comes "
               "from; Grad-CAM averages the gradient over the whole map first, which can light up background the "
               "model does not use.")
CAM_NOTE = ("Bright areas are where the model found the most evidence for this class: a conv layer's activations "
            "times how much they raise the class score.")
MIRROR_NOTE = (" The map is of the image as it is; this model's answer also looks at its mirror image and averages the "
               "two.")


def _explainer(saved: SavedModel):
    """The model's Explainer, or None after showing why there is nothing to explain."""
    try:
        explainer = resources.explainer(saved)
    except ModelStoreError as error:
        session.show_load_error(saved, error)
        return None
    if explainer.unavailable:
        st.info(explainer.unavailable, icon=":material/visibility_off:")
        return None
    return explainer


def _no_evidence_note(heatmap: np.ndarray, class_name: str) -> None:
    if not heatmap.any():
        st.caption(f"Nothing in this picture raises the score of **{class_name}**, so the map is empty.")


def why(saved: SavedModel, image: np.ndarray, predicted: int, key: str) -> None:
    """A class activation map for a class of the user's choice (the prediction first), feature maps and first-layer
    filters."""
    explainer = _explainer(saved)
    if explainer is None:
        return
    from fmnist_core.explain import METHODS  # here, not at the top: TensorFlow is loaded with the explainer

    heat_tab, maps_tab, filters_tab = st.tabs(["Where it looks", "Feature maps", "First-layer filters"])
    with heat_tab:
        # side by side where they fit, the note under the map where they do not (a phone, a narrow column)
        row = st.container(horizontal=True, gap="medium")
        picture, note = row.container(width=HEATMAP_SIDE), row.container(width=NOTE_WIDTH)
        with note:
            # the prediction in the key: a new drawing with a new prediction starts from that class again
            class_name = st.selectbox("Show the evidence for", CLASS_NAMES, index=predicted,
                                      key=f"cam_class_{key}_{predicted}")
            method = st.radio("Method", METHODS, format_func=METHOD_LABELS.get, horizontal=True,
                              key=f"cam_method_{key}", help=METHOD_HELP)
            st.caption(CAM_NOTE + f" Layer: `{explainer.target_layer_name}`."
                       + (MIRROR_NOTE if saved.hyperparameters.mirror_average else ""))
        heatmap = explainer.cam(image, CLASS_NAMES.index(class_name), method=method).heatmaps[0]
        picture.image(charts.heat_overlay(image, heatmap, factor=HEATMAP_SIDE // 28),
                      caption=f"{METHOD_NAMES[method]} for {class_name}")
        with note:
            _no_evidence_note(heatmap, class_name)
    with maps_tab:
        st.caption("What each conv block passes on for this picture: one small map per filter, brighter where the "
                   "filter responds more (each map scaled on its own). Deeper blocks see larger, coarser patterns.")
        for block in explainer.feature_maps(image):
            height, width, channels = block.maps.shape
            st.markdown(f"**{block.layer_name}**: {channels} maps of {height}×{width}")
            st.image(charts.image_grid(np.moveaxis(block.maps, -1, 0), GRID_COLUMNS))
    with filters_tab:
        filters = explainer.first_layer_filters()
        st.caption(f"The {len(filters)} kernels of the first conv layer, as the model learned them: light pixels add "
                   "brightness under them, dark ones subtract it, mid-grey is zero. They pick up edges and blobs.")
        st.image(charts.image_grid(filters, GRID_COLUMNS, tile_pixels=40, symmetric=True))


def compare_classes(saved: SavedModel, image: np.ndarray, predicted: int, true_class: int) -> None:
    """Class activation maps for the predicted and the true class of one image, side by side."""
    explainer = _explainer(saved)
    if explainer is None:
        return
    result = explainer.cam(np.stack([image, image]), np.array([predicted, true_class]))
    st.caption(f"Where the model found evidence ({METHOD_NAMES[result.method]}) for each class:")
    for column, heatmap, class_index, role in zip(st.columns(2), result.heatmaps, (predicted, true_class),
                                                  ("predicted", "true"), strict=True):
        with column:
            st.image(charts.heat_overlay(image, heatmap, factor=4), caption=f"{CLASS_NAMES[class_index]} ({role})")
            _no_evidence_note(heatmap, CLASS_NAMES[class_index])
