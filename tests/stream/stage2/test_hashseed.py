"""Signals must not depend on PYTHONHASHSEED (word ids are Python hashes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Two 2-grams tie at the top count ("ab cd" and "efghij klmnop"); the first in the text must
# win in every process (upstream's Counter.most_common), whichever order the hashes put them in.
SNIPPET = """
import json
from codekiln.stream.filters.document import Document
from codekiln.stream.filters.signals.text import _top_ngram
doc = Document("ab cd " * 4 + "efghij klmnop " * 4 + "q r s t u v w")
print(json.dumps([_top_ngram(doc, 2), _top_ngram(doc, 3)]))
"""


def _run(seed: str) -> list[float]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run(
        [sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, check=True
    )
    return list(json.loads(out.stdout))


def test_top_ngram_is_independent_of_hash_seed() -> None:
    """frac_chars_top_ngrams gives one value whatever the hash seed breaks ties with."""
    values = {tuple(_run(str(seed))) for seed in range(8)}
    assert len(values) == 1
    (top2, _top3) = values.pop()
    words = "ab cd " * 4 + "efghij klmnop " * 4 + "q r s t u v w"
    word_chars = sum(len(w) for w in words.split())
    assert top2 == (len("ab") + len("cd")) * 4 / word_chars
