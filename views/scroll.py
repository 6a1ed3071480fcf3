"""Bringing an element into view once, after a click whose answer is drawn out of sight (Streamlit has no scroll
API)."""

from __future__ import annotations

import json

import streamlit as st


def scroll_to(selector: str, block: str = "start") -> None:
    """Scroll the page once so that the element `selector` is in view (`block`: "start", "center", "nearest").

    A script, drawn where the call is: call it last on the page, and only in the run that follows the click, so that
    its coming and going shifts no other element. It waits up to 10 s for the element, which the browser may draw
    after the script.
    """
    st.html(f"""<script>(() => {{
  const selector = {json.dumps(selector)}, block = {json.dumps(block)};
  const deadline = Date.now() + 10000;
  let moved = false;  // by the person: then the page is theirs
  for (const type of ["wheel", "touchmove", "keydown", "pointerdown"]) {{
    document.addEventListener(type, () => {{ moved = true; }}, {{once: true, passive: true, capture: true}});
  }}
  const scroll = () => {{
    const element = document.querySelector(selector);
    if (!element) {{
      if (Date.now() < deadline) setTimeout(scroll, 100);
      return;
    }}
    element.scrollIntoView({{block, behavior: "smooth"}});
    // What the page draws while it scrolls (a rerun's elements coming and going) can leave the element elsewhere,
    // under the app's bar once in CI: put it where it was meant to be, unless the person has moved meanwhile.
    const again = () => {{
      if (!moved) document.querySelector(selector)?.scrollIntoView({{block, behavior: "instant"}});
    }};
    for (const wait of [1200, 3000]) setTimeout(again, wait);
  }};
  scroll();
}})();</script>""", unsafe_allow_javascript=True)
