"""Plotly figures and image helpers the pages share. Pure functions: data in, figure out, no Streamlit."""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

# Imported here, fully, before any figure is built: Plotly looks pandas up in sys.modules when it checks a figure's
# data, and while the app's warm-up thread is importing TensorFlow (which imports pandas) it found the module half
# initialised: the first Runs page of a fresh server failed with "partially initialized module 'pandas' has no
# attribute 'Series'". An import statement waits for the other thread's import to finish.
import pandas  # noqa: F401, I001
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fmnist_core.reporting import batch_values, exponential_moving_average
from views.text import hyperparameter_label

ACCENT, MUTED, SECOND = "#e4572e", "#9aa5b1", "#2e86ab"
MAX_DRAWN_POINTS = 300  # per curve of the live batch chart
# For every st.plotly_chart: no floating toolbar, which covered the charts' titles (zoom and pan stay on the mouse;
# double-click resets).
CONFIG = {"displayModeBar": False}
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", yanchor="top", y=-0.25))


def enlarge(image: np.ndarray, factor: int = 3) -> np.ndarray:
    """`image` (grey or RGB) scaled up by a whole factor with nearest neighbour, so its pixels stay crisp squares."""
    return np.repeat(np.repeat(np.asarray(image), factor, axis=0), factor, axis=1)


# a dark-to-bright "hot" colour scale (black, red, yellow, white) for heatmaps over grey images
_HEAT_STOPS = np.array([[0, 0, 0], [200, 30, 20], [255, 200, 0], [255, 255, 220]], dtype=np.float32)


def heat_colours(heatmap: np.ndarray) -> np.ndarray:
    """A (H, W) map in 0..1 as (H, W, 3) uint8 RGB on the hot colour scale."""
    position = np.clip(np.asarray(heatmap, dtype=np.float32), 0, 1) * (len(_HEAT_STOPS) - 1)
    low = np.minimum(position.astype(int), len(_HEAT_STOPS) - 2)
    fraction = (position - low)[..., None]
    return (_HEAT_STOPS[low] * (1 - fraction) + _HEAT_STOPS[low + 1] * fraction).round().astype(np.uint8)


def heat_overlay(image: np.ndarray, heatmap: np.ndarray, factor: int = 8, opacity: float = 0.55) -> np.ndarray:
    """A 28x28 grey image with its 0..1 heatmap blended on top, enlarged with crisp pixels, as RGB uint8."""
    grey = np.repeat(np.asarray(image, dtype=np.float32)[..., None], 3, axis=-1)
    blended = (1 - opacity) * grey + opacity * heat_colours(heatmap).astype(np.float32)
    return enlarge(blended.round().astype(np.uint8), factor)


def to_grey(values: np.ndarray, symmetric: bool = False) -> np.ndarray:
    """Any real-valued map stretched to 0..255 uint8; `symmetric` puts zero at mid-grey (for filter weights)."""
    values = np.asarray(values, dtype=np.float32)
    if symmetric:
        scale = float(np.abs(values).max())
        return ((values / scale if scale > 0 else values) * 127.5 + 127.5).clip(0, 255).astype(np.uint8)
    low, high = float(values.min()), float(values.max())
    return ((values - low) / (high - low) * 255 if high > low else np.zeros_like(values)).astype(np.uint8)


def image_grid(tiles: np.ndarray, columns: int, tile_pixels: int = 56, gap: int = 2,
               symmetric: bool = False) -> np.ndarray:
    """(N, h, w) maps as one grey uint8 image: each tile stretched to 0..255 on its own and enlarged to
    about `tile_pixels`, `columns` per row, separated by `gap` white pixels."""
    tiles = np.asarray(tiles)
    count, side = len(tiles), tiles.shape[1]
    factor = max(1, round(tile_pixels / side))
    cell = side * factor + gap
    rows = max(1, -(-count // columns))
    grid = np.full((rows * cell - gap, min(count, columns) * cell - gap), 255, dtype=np.uint8)
    for position, tile in enumerate(tiles):
        row, column = divmod(position, columns)
        grid[row * cell : row * cell + side * factor, column * cell : column * cell + side * factor] = enlarge(
            to_grey(tile, symmetric), factor)
    return grid


def class_balance_figure(train_counts: Sequence[int], test_counts: Sequence[int],
                         class_names: Sequence[str]) -> go.Figure:
    """Images per class in the training and test sets, as grouped bars."""
    figure = go.Figure([
        go.Bar(x=list(class_names), y=list(map(int, train_counts)), name="training set", marker_color=SECOND),
        go.Bar(x=list(class_names), y=list(map(int, test_counts)), name="test set", marker_color=ACCENT),
    ])
    figure.update_layout(barmode="group", height=340, title="Images per class", **_LAYOUT)
    figure.update_xaxes(tickangle=-30)
    return figure


def probability_bars(probabilities: Sequence[float], class_names: Sequence[str], title: str = "") -> go.Figure:
    """Horizontal bars of the 10 class probabilities, first class on top, the top class highlighted."""
    probabilities = np.asarray(probabilities, dtype=float)
    top = int(probabilities.argmax())
    figure = go.Figure(go.Bar(
        x=probabilities, y=list(class_names), orientation="h",
        marker_color=[ACCENT if i == top else MUTED for i in range(len(class_names))],
        text=[f"{p:.1%}" for p in probabilities], textposition="outside", cliponaxis=False,
        hovertemplate="%{y}: %{x:.2%}<extra></extra>",
    ))
    figure.update_layout(
        title=title or None, height=320, showlegend=False, margin=dict(l=10, r=40, t=40 if title else 10, b=10),
        xaxis=dict(range=[0, 1.15], tickformat=".0%", showgrid=False, visible=False),
        yaxis=dict(autorange="reversed"),
    )
    return figure


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str],
                     selected: tuple[int, int] | None = None) -> go.Figure:
    """The confusion matrix as a heatmap with counts, plus one invisible marker per cell to click on; the
    `selected` (true, predicted) cell is outlined.

    Plotly heatmaps cannot be selected, so the markers carry the selection: customdata = (true, predicted).
    Colours stop at the largest mistake count, so mistakes stand out instead of fading next to the diagonal.
    """
    confusion = np.asarray(confusion)
    names = list(class_names)
    mistakes = confusion.copy()
    np.fill_diagonal(mistakes, 0)
    rows, cols = np.indices(confusion.shape)
    figure = go.Figure(go.Heatmap(
        z=confusion.tolist(), x=names, y=names, text=confusion.tolist(), texttemplate="%{text}", colorscale="Blues",
        zmin=0, zmax=max(int(mistakes.max()), 1), showscale=False, hoverinfo="skip",
    ))
    figure.add_trace(go.Scatter(
        x=[names[c] for c in cols.ravel()], y=[names[r] for r in rows.ravel()], mode="markers",
        marker=dict(symbol="square", size=34, color="rgba(0,0,0,0)"),
        # plain lists: numpy arrays travel as typed arrays, which come back from the browser as {"0": .., "1": ..}
        customdata=np.stack([rows.ravel(), cols.ravel()], axis=1).tolist(), text=confusion.ravel().tolist(),
        hovertemplate="True: %{y}<br>Predicted: %{x}<br>%{text} images · click to browse<extra></extra>",
        showlegend=False,
    ))
    figure.update_layout(
        height=560, margin=dict(l=10, r=10, t=10, b=10), clickmode="event+select",
        xaxis=dict(title="Predicted class", tickangle=-35, showgrid=False, zeroline=False),
        yaxis=dict(title="True class", autorange="reversed", showgrid=False, zeroline=False),
    )
    if selected is not None:
        true_class, predicted_class = selected
        figure.add_shape(type="rect", x0=predicted_class - 0.5, x1=predicted_class + 0.5, y0=true_class - 0.5,
                         y1=true_class + 0.5, line=dict(color=ACCENT, width=3))
    return figure


def selected_cell(selection: Mapping | None) -> tuple[int, int] | None:
    """(true class, predicted class) of the clicked confusion-matrix cell in a plotly_chart selection."""
    points = ((selection or {}).get("selection") or {}).get("points") or []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, list | tuple) and len(data) == 2:
            return int(data[0]), int(data[1])
    return None


def batch_curves(batch_points: Sequence[tuple[float, float, float]], batches_per_epoch: int,
                 smoothing: float = 0.9) -> go.Figure:
    """Per-batch training loss and accuracy against epochs (raw, faint) with their moving averages (bold)."""
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    if batch_points:
        position, loss, accuracy = batch_values(batch_points, batches_per_epoch).T
        # Smoothed over every point, drawn at most MAX_DRAWN_POINTS per curve: the browser redraws it while training.
        step = -(-len(position) // MAX_DRAWN_POINTS)
        shown = np.unique(np.r_[np.arange(0, len(position), step), len(position) - 1])  # always the latest
        for values, name, colour, secondary in ((loss, "loss", ACCENT, False), (accuracy, "accuracy", SECOND, True)):
            figure.add_trace(go.Scatter(x=position[shown], y=values[shown], name=f"{name} (per batch)", mode="lines",
                                        line=dict(color=colour, width=1), opacity=0.25, showlegend=False,
                                        hoverinfo="skip"), secondary_y=secondary)
            smoothed = exponential_moving_average(values, smoothing)
            figure.add_trace(go.Scatter(x=position[shown], y=smoothed[shown],
                                        name=f"training {name}", mode="lines",
                                        line=dict(color=colour, width=2)), secondary_y=secondary)
    # The bold lines are the moving averages, the faint ones each batch; "(smoothed)" in the legend was cut at 1024 px
    figure.update_layout(title="Training, batch by batch", height=320, **_LAYOUT)
    figure.update_xaxes(title_text="epoch")
    figure.update_yaxes(title_text="loss", secondary_y=False, rangemode="tozero")
    figure.update_yaxes(title_text="accuracy", secondary_y=True, tickformat=".0%", range=[0, 1], dtick=0.2,
                        showgrid=False)
    return figure


def epoch_curves(epochs: Sequence[Mapping], metric: str) -> go.Figure:
    """Training vs validation `metric` ('loss' or 'accuracy') per epoch; an epoch a stop cut short is an open marker
    labelled partial."""
    x = [record["epoch"] for record in epochs]
    partial = [not record.get("complete", True) for record in epochs]
    symbols = ["circle-open" if cut else "circle" for cut in partial]
    notes = [" (partial epoch: stopped before its end)" if cut else "" for cut in partial]
    figure = go.Figure()
    for name, key, colour in ((f"training {metric}", metric, MUTED), (f"validation {metric}", f"val_{metric}", ACCENT)):
        figure.add_trace(go.Scatter(
            x=x, y=[r[key] for r in epochs], name=name, mode="lines+markers", line=dict(color=colour),
            marker=dict(symbol=symbols, size=[10 if cut else 6 for cut in partial]), customdata=notes,
            hovertemplate=f"epoch %{{x}}: {name} %{{y:{'.2%' if metric == 'accuracy' else '.3f'}}}%{{customdata}}"
                          "<extra></extra>"))
    figure.update_layout(title=f"{metric.capitalize()} per epoch", height=320, **_LAYOUT)
    figure.update_xaxes(title_text="epoch", dtick=1 if len(x) <= 20 else None)
    figure.update_yaxes(tickformat=".1%" if metric == "accuracy" else None)
    return figure


def runs_curves(histories: Iterable[tuple[str, Sequence[Mapping]]], metric: str) -> go.Figure:
    """One validation curve of `metric` per saved model, overlaid."""
    figure = go.Figure()
    values = []
    for name, history in histories:
        if history:
            values += [r[f"val_{metric}"] for r in history]
            figure.add_trace(go.Scatter(x=[r["epoch"] for r in history], y=[r[f"val_{metric}"] for r in history],
                                        name=name, mode="lines+markers"))
    figure.update_layout(title=f"Validation {metric} per epoch", height=380, showlegend=True, **_LAYOUT)
    longest = max((len(history) for _, history in histories), default=0) if isinstance(histories, list) else 0
    figure.update_xaxes(title_text="epoch", dtick=1 if longest <= 20 else None, rangemode="tozero")
    if metric == "accuracy":  # a fixed top at 100 %; one point alone would otherwise autorange to 0-150 %
        figure.update_yaxes(tickformat=".0%", range=[max(0.0, min(values, default=0.0) - 0.05), 1.0])
    else:
        figure.update_yaxes(rangemode="tozero")
    return figure


PARCOORDS_TITLE_CHARS = 12  # an axis title's first line: at a phone's width the axes stand ~65 px apart


def _axis_title(label: str) -> str:
    """An axis title on at most two short lines (Plotly breaks a parcoords title only at <br>): on one line, long
    titles ran into their neighbours at 390 px, and a third line, drawn downwards, ran into the axis's top value. An
    explanation in brackets ("(0: all)") is left to the form and the table; a unit ("(%)") stays."""
    words = re.sub(r"\s*\((?!%\)).*\)$", "", label)
    lines = textwrap.wrap(words, PARCOORDS_TITLE_CHARS, break_long_words=False, break_on_hyphens=False)
    return "<br>".join([lines[0], " ".join(lines[1:])]) if len(lines) > 1 else words


def parallel_coordinates(trials, names: list[str]) -> go.Figure:
    """One line per completed trial through its swept values to its validation accuracy (in %)."""
    done = [trial for trial in trials if trial.val_accuracy is not None]
    dimensions = []
    for name in names:
        label = _axis_title(hyperparameter_label(name))
        values = [trial.values.get(name) for trial in done]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            ticks = sorted(set(values))
            if name == "learning_rate" and all(v > 0 for v in values):  # decades apart: a log axis
                dimensions.append(dict(label=label, values=[math.log10(v) for v in values],
                                       tickvals=[math.log10(v) for v in ticks], ticktext=[f"{v:g}" for v in ticks]))
            elif not ticks:  # no trial scored yet
                dimensions.append(dict(label=label, values=[]))
            else:  # ticks at the tried values only; one value alone sits mid-axis, not on a made-up scale
                low, high = (ticks[0], ticks[-1]) if len(ticks) > 1 else (ticks[0] - 1, ticks[0] + 1)
                dimensions.append(dict(label=label, values=values, range=[low, high], tickvals=ticks,
                                       ticktext=[f"{v:g}" for v in ticks]))
        else:  # categories (optimizer, booleans): numbered, labelled
            categories = sorted({str(v) for v in values})
            dimensions.append(dict(label=label, values=[categories.index(str(v)) for v in values],
                                   tickvals=list(range(len(categories))), ticktext=categories))
    accuracy = [100 * trial.val_accuracy for trial in done]
    # whole percents at its ends, with ticks there: Plotly writes an axis's ends above and below it when no tick
    # marks them, and the value above ran into the title
    low, high = (math.floor(min(accuracy)), math.ceil(max(accuracy))) if accuracy else (0, 100)
    low, high = (low - 1, high + 1) if low == high else (low, high)
    ticks = [float(value) for value in np.linspace(low, high, 5)]
    dimensions.append(dict(label=_axis_title("Validation accuracy (%)"), values=accuracy, range=[low, high],
                           tickvals=ticks, ticktext=[f"{value:g}" for value in ticks]))
    figure = go.Figure(go.Parcoords(line=dict(color=accuracy, colorscale="Viridis", showscale=True),
                                    dimensions=dimensions, labelfont=dict(size=11)))
    lines = max(dimension["label"].count("<br>") + 1 for dimension in dimensions)
    figure.update_layout(height=360, margin=dict(l=60, r=60, t=30 + 16 * lines, b=20))  # room for the titles' lines
    return figure
