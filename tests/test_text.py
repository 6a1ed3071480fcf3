"""User text shown as plain text: Markdown, Streamlit's directives and LaTeX are escaped, long text is cut."""

import re

import pytest

from views.text import WORD_JOINER, plain

HOSTILE = ["![](http://127.0.0.1:9999/p.png) hi", "**bold** :red[red] $x^2$", "[click](javascript:alert(1))",
           "<img src=x onerror=alert(1)>", "`code` ~~gone~~ # heading", ":material/delete: :smile:", "a\\*b"]


@pytest.mark.parametrize("text", HOSTILE)
def test_every_markdown_character_is_escaped_and_unescaping_gives_the_text_back(text):
    escaped = plain(text)
    unescaped = re.sub(r"\\(.)", r"\1", escaped)  # CommonMark's backslash escapes undo exactly to the input
    assert unescaped.replace(WORD_JOINER, "") == text  # with an invisible word joiner before an address
    assert not re.search(r"(?<!\\)[!\[\]()*:$<>`~#]", escaped)  # no syntax character is left unescaped


@pytest.mark.parametrize("address", ["https://example.com/x", "HTTP://127.0.0.1:8/p", "www.example.org",
                                     "me@example.com"])
def test_a_web_or_mail_address_gets_a_word_joiner_so_markdown_does_not_make_it_a_link(address):
    # GFM links an address only after a space or punctuation; an e-mail address from the name before its @
    joined_at = address.index("@") if "@" in address else 0
    expected = address[:joined_at] + WORD_JOINER + address[joined_at:]
    assert re.sub(r"\\(.)", r"\1", plain(f"see “{address}”")) == f"see “{expected}”"


def test_long_text_is_cut_and_kept_on_one_line():
    assert plain("a\nb\tc") == "a b c"
    assert plain("x" * 200, max_chars=40) == "x" * 39 + "…"
