"""What the stage-2 filter tests share: a realistic JavaScript file every rule keeps, and a
generator of distinct words for texts whose vocabulary must not trip the n-gram rules."""

from __future__ import annotations

GOOD_JS = """'use strict';

const DEFAULT_LIMIT = 20;

/**
 * Splits a list of search results into pages of a fixed size.
 */
function paginate(items, limit) {
  const size = limit || DEFAULT_LIMIT;
  const pages = [];
  for (let start = 0; start < items.length; start += size) {
    pages.push(items.slice(start, start + size));
  }
  return pages;
}

function summarize(pages) {
  let total = 0;
  pages.forEach((page) => {
    total += page.length;
  });
  return { pages: pages.length, total: total };
}

module.exports = { paginate, summarize };
"""


_SYLLABLES = ("ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "da", "fe", "gu", "he")


def word(i: int) -> str:
    """A distinct pronounceable word per ``i`` (varied vocabulary keeps n-gram rules quiet)."""
    out = ""
    i += 7
    while i:
        i, r = divmod(i, len(_SYLLABLES))
        out += _SYLLABLES[r]
    return out
