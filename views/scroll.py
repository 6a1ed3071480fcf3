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
  const deadline = Date.now() + 10000;
  const scroll = () => {{
    const element = document.querySelector({json.dumps(selector)});
    if (element) element.scrollIntoView({{block: {json.dumps(block)}, behavior: "smooth"}});
    else if (Date.now() < deadline) setTimeout(scroll, 100);
  }};
  scroll();
}})();</script>""", unsafe_allow_javascript=True)
