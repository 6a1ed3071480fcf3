"""What a reader cannot read on a page: text cut off, words broken across lines, content wider than the window.

`layout_problems(page)` runs in the browser and returns one line per problem, naming the text concerned. It
looks at the main area (and the sidebar when it is open), at the elements a person reads: text, labels,
metric values, table cells and the answers' captions. Code blocks (the share link wraps on purpose) and
charts' own SVG text are left out.
"""

from __future__ import annotations

from playwright.sync_api import Page

_PROBE = r"""
() => {
  const problems = [];
  const visible = (el) => {
    if (!el || !el.offsetParent) return false;
    const r = el.getBoundingClientRect();
    return r.width > 2 && r.height > 2;  // screen-reader-only labels are 1px boxes, clipped by design
  };
  // icons are ligatures of a symbol font ("add", "close"): drawn as one glyph whatever their text
  const skipped = (el) => el.closest('pre, code, svg, [data-testid="stTooltipContent"], [role="tooltip"], '
                                     + '[data-testid="stIconMaterial"], .stPlotlyChart')
                          || getComputedStyle(el).fontFamily.includes('Material');
  const shown = (text) => JSON.stringify(text.trim().replace(/\s+/g, ' ').slice(0, 50));
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth + 1) {
    problems.push(`the page is ${page.scrollWidth}px wide in a ${window.innerWidth}px window`);
  }
  for (const main of document.querySelectorAll('[data-testid="stMain"], [data-testid="stSidebar"]')) {
    const box = main.getBoundingClientRect();
    if (box.right <= 0 || box.width < 100) continue;  // a collapsed sidebar (phones): nothing to read there
    if (main.scrollWidth > main.clientWidth + 1 && getComputedStyle(main).overflowX !== 'visible') {
      problems.push(`${main.dataset.testid} scrolls sideways: ${main.scrollWidth}px in ${main.clientWidth}px`);
    }
    // tables (st.dataframe draws on a canvas): a column pushed out of view needs a sideways scroll
    for (const scroller of main.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')) {
      if (visible(scroller) && scroller.scrollWidth > scroller.clientWidth + 1) {
        problems.push(`a table hides columns: ${scroller.scrollWidth}px of columns in ${scroller.clientWidth}px`);
      }
    }
    // text cut by an ellipsis or hidden overflow
    for (const el of main.querySelectorAll('*')) {
      const text = el.textContent.trim();
      if (!text || text.length > 120 || skipped(el) || !visible(el)) continue;
      const style = getComputedStyle(el);
      const clips = style.textOverflow === 'ellipsis' || ['hidden', 'clip'].includes(style.overflowX)
                    || ['hidden', 'clip'].includes(style.overflow);
      if (clips && el.scrollWidth > el.clientWidth + 1) problems.push(`cut off: ${shown(el.textContent)}`);
    }
    // words broken in the middle across two lines (a break at a hyphen or slash is allowed)
    const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      const parent = node.parentElement;
      if (!parent || skipped(parent) || !visible(parent)) continue;
      const words = /[^\s\-\/·,]{2,}/g;
      let match;
      while ((match = words.exec(node.textContent))) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)));
        if (lines.size > 1) problems.push(`word broken across lines: ${shown(match[0])}`);
      }
    }
  }
  return [...new Set(problems)];
}
"""


def layout_problems(page: Page) -> list[str]:
    """Each thing on the page a reader cannot read whole, as a short line; empty when everything fits."""
    return page.evaluate(_PROBE)
