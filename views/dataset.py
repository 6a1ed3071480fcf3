"""Dataset page: what the model learns from — class balance, the mean image of each class, random examples."""

from __future__ import annotations

import numpy as np
import streamlit as st

from fmnist_core.data import CLASS_NAMES
from fmnist_core.dataset_stats import random_examples
from views import charts, resources

EXAMPLES_PER_CLASS = 12


def _shuffle() -> None:
    st.session_state["explore_seed"] = st.session_state.get("explore_seed", 0) + 1


def render() -> None:
    st.title("Dataset explorer")
    data = resources.dataset()
    statistics = resources.dataset_statistics()
    st.caption(f"Fashion-MNIST: {len(data.train_labels):,} training and {len(data.test_labels):,} test images of "
               f"28×28 grey pixels in 10 classes, read from `{data.source}`.")

    st.plotly_chart(charts.class_balance_figure(statistics["train_counts"], statistics["test_counts"], CLASS_NAMES),
                    key="class_balance", config=charts.CONFIG)

    st.subheader("The mean image of each class")
    st.caption("Every training image of a class averaged pixel by pixel: the shape the class has in common. "
               "Blurry parts vary from image to image; sharp parts are where every item of the class is.")
    with st.container(horizontal=True, wrap=True):  # as many per row as fit, each wide enough for its name
        for class_name, mean_image in zip(CLASS_NAMES, statistics["mean_images"], strict=True):
            st.image(charts.enlarge(mean_image.round().astype("uint8"), 3), caption=class_name, width=84)

    st.subheader("Random training images")
    seed = st.session_state.setdefault("explore_seed", 0)
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button("Shuffle", key="shuffle_examples", icon=":material/shuffle:", on_click=_shuffle)
        st.caption(f"{EXAMPLES_PER_CLASS} images of each class, drawn with seed {seed}.")
    for class_name, indices in zip(CLASS_NAMES, random_examples(data.train_labels, EXAMPLES_PER_CLASS, seed),
                                   strict=True):
        # the class name above its row, so a narrow screen never breaks it; raw pixels, not stretched per image:
        # these are exactly what the model is trained on
        st.markdown(f"**{class_name}**")
        st.image(charts.enlarge(_row(data.train_images[indices]), 2))


def _row(images: np.ndarray) -> np.ndarray:
    """Images side by side with a 2-pixel white gap."""
    gap = np.full((images.shape[1], 2), 255, dtype=np.uint8)
    parts = [part for image in images for part in (image, gap)][:-1]
    return np.concatenate(parts, axis=1)


if __name__ == "__main__":  # run by st.navigation as the page's script; importing it runs nothing
    render()
