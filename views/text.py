"""User text (run names, file names, sweep names) shown on a page as plain text, never as Markdown."""

from __future__ import annotations

import re

# Every ASCII punctuation mark CommonMark lets a backslash escape, which covers Markdown's syntax (links and images,
# emphasis, code, HTML) and Streamlit's own (:colour[…] and :emoji: directives, $LaTeX$).
_MARKDOWN_PUNCTUATION = re.compile(r"([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")


def plain(text: object, max_chars: int = 80) -> str:
    """`text` escaped to show exactly as typed inside Markdown, on one line, cut to `max_chars` with an ellipsis."""
    text = " ".join(str(text).split())
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
