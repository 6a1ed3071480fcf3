"""User text shown as plain text: Markdown, Streamlit's directives and LaTeX are escaped, long text is cut."""

import re

import pytest

from views.text import plain

HOSTILE = ["![](http://127.0.0.1:9999/p.png) hi", "**bold** :red[red] $x^2$", "[click](javascript:alert(1))",
           "<img src=x onerror=alert(1)>", "`code` ~~gone~~ # heading", ":material/delete: :smile:", "a\\*b"]


@pytest.mark.parametrize("text", HOSTILE)
def test_every_markdown_character_is_escaped_and_unescaping_gives_the_text_back(text):
    escaped = plain(text)
    assert re.sub(r"\\(.)", r"\1", escaped) == text  # CommonMark's backslash escapes undo exactly to the input
    assert not re.search(r"(?<!\\)[!\[\]()*:$<>`~#]", escaped)  # no syntax character is left unescaped


def test_long_text_is_cut_and_kept_on_one_line():
    assert plain("a\nb\tc") == "a b c"
    assert plain("x" * 200, max_chars=40) == "x" * 39 + "…"
