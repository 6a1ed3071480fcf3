"""What a touch screen needs that Streamlit's sliders, the drawing canvas and Plotly do not do by themselves: a swipe
that starts on a slider scrolls the page, no invisible control lies over the drawing square, and one tap on a chart's
point selects it.

Each is injected into the page (st.html), so each rests on the DOM of a pinned version (Streamlit 1.67's React Aria
slider, streamlit-drawable-canvas 0.13, Plotly's drag layer): tests/e2e/test_touch.py fails if an upgrade changes it.
"""

from __future__ import annotations

import json

import streamlit as st

# Streamlit's slider (React Aria) sets `touch-action: none` on its track and thumb and moves the value to wherever a
# finger lands on the track: on a phone, scrolling the Train form over a slider moved it (#28). On a touch screen the
# track now lets touches through to the page, which scrolls; only the thumb is grabbed, and only a sideways drag moves
# it (`pan-y` on the track too: a touch's action is what the element and its ancestors all allow). The thumb's hit area
# grows to a finger's size. A mouse still clicks anywhere on the track.
_SLIDER_CSS = """<style>
@media (pointer: coarse) {
  [data-testid="stSlider"] [role="group"] [data-rac] { touch-action: pan-y !important; }
  [data-testid="stSlider"] [role="group"] > [data-rac] { pointer-events: none; }
  [data-testid="stSlider"] [role="group"] > [data-rac] > [data-rac] { pointer-events: auto; }
  [data-testid="stSlider"] [role="group"] > [data-rac] > [data-rac]::before {
    content: ""; position: absolute; inset: -14px; }
}
</style>"""

# streamlit-drawable-canvas keeps its toolbar (Undo, Redo, Reset…) inside the drawing square's top right corner,
# invisible until the mouse hovers the square. A phone has no hover: strokes starting there drew nothing, and a tap
# there could hit the hidden "Reset canvas & history" (#28). The component offers no switch for it (only `disabled`,
# which also stops drawing) and draws in a shadow root, out of reach of the page's CSS, so a script adds this style
# to its shadow root: Undo and Redo always shown, under the square, large enough for a finger; the rest hidden (the
# page has its own Clear; the component's Edit and Send buttons mean nothing here).
_CANVAS_TOOLBAR_CSS = """
.dc-toolbar, .dc-toolbar[data-pinned=true], .dc-root:hover > .dc-toolbar {
  position: static !important; opacity: 1 !important; top: auto !important; transition: none !important;
  padding: 0.375rem 0 0 !important; justify-content: flex-end; }
.dc-toolbar .dc-icon-button:not([aria-label="Undo"]):not([aria-label="Redo"]),
.dc-toolbar .dc-toolbar-separator, .dc-toolbar .dc-toolbar-contextual { display: none !important; }
.dc-toolbar .dc-icon-button { padding: 0.5rem; }
.dc-toolbar .dc-icon-button svg { width: 1.25rem; height: 1.25rem; }
"""

# Once per browser tab. A canvas's shadow root appears after its element (and again with each new canvas, after
# Clear), with no event to wait for, so the script looks for unstyled ones four times a second: a handful of elements.
_CANVAS_TOOLBAR_SCRIPT = """<script>
(() => {
  if (window.fmnistCanvasToolbar) return;
  window.fmnistCanvasToolbar = true;
  const css = %s;
  setInterval(() => {
    for (const host of document.querySelectorAll('[class*="st-key-canvas_"] .stBidiComponent div')) {
      const root = host.shadowRoot;
      if (root && !root.getElementById('fmnist-canvas-toolbar')) {
        const style = document.createElement('style');
        style.id = 'fmnist-canvas-toolbar';
        style.textContent = css;
        root.appendChild(style);
      }
    }
  }, 250);
})();
</script>"""


def swipes_scroll_over_sliders() -> None:
    """On a touch screen, a swipe that starts on a slider scrolls the page instead of moving the slider."""
    st.html(_SLIDER_CSS)  # style only: Streamlit puts it where it takes no room


def canvas_toolbar_under_the_square() -> None:
    """The drawing canvas's Undo and Redo always visible, under the square, and nothing hidden over it. Draw it on
    every run in the same place (an element that comes and goes shifts the page's others, which redraw afresh)."""
    st.html(_CANVAS_TOOLBAR_SCRIPT % json.dumps(_CANVAS_TOOLBAR_CSS), unsafe_allow_javascript=True)


# Plotly picks the point a click selects from its hover, which a finger's tap sets only after the click: on a phone the
# first tap on a confusion-matrix cell showed its tooltip and only a second tap browsed its mistakes (#28). The script
# hands Plotly the hover first, at the finger's place, as the mouse would have by moving there: one listener per browser
# tab, for the charts named.
_TAP_SELECTS_SCRIPT = """<script>
(() => {
  const charts = window.fmnistTapSelects = window.fmnistTapSelects || new Set();
  const listening = charts.size > 0;
  charts.add(%s);
  if (listening) return;
  document.addEventListener('touchstart', (event) => {
    if (event.touches.length !== 1 || !event.target.closest) return;
    const plot = [...charts].map((chart) => event.target.closest(`${chart} .nsewdrag`)).find(Boolean);
    if (!plot) return;
    const touch = event.touches[0];
    plot.dispatchEvent(new MouseEvent('mousemove', {clientX: touch.clientX, clientY: touch.clientY, bubbles: true}));
  }, {capture: true, passive: true});
})();
</script>"""


def one_tap_selects(chart_key: str) -> None:
    """On a touch screen, one tap on a point of the plotly chart made with `key=chart_key` selects it (Plotly alone
    needs two: the first shows the tooltip). Draw it on every run in the same place."""
    st.html(_TAP_SELECTS_SCRIPT % json.dumps(f".st-key-{chart_key}"), unsafe_allow_javascript=True)
