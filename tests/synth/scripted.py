"""Scripted answers for the fake OpenAI server, one per synth prompt, keyed by prompt text."""

from __future__ import annotations

from tests.fakes.openai_server import FakeOpenAIServer, Reply

SNIPPET = '''### Code
```python
def running_total(values):
    """Prefix sums of a list of numbers."""
    out, acc = [], 0
    for v in values:
        acc += v
        out.append(acc)
    return out
```

### Tests
```python
assert running_total([]) == []
assert running_total([1, 2, 3]) == [1, 3, 6]
```
'''

BROKEN_SNIPPET = """### Code
```python
def running_total(values):
    return [sum(values[: i + 1]) for i in range(len(values))]
```

### Tests
```python
assert running_total([1, 2, 3]) == [1, 2, 3]
```
"""

TEXTBOOK = (
    "## Prefix sums\n\nA prefix sum turns a sequence into the running totals of its elements. "
    + "It is one of the most useful ideas in algorithm design, because once the prefix sums "
    "are known any range sum can be answered in constant time by subtracting two of them. "
    "Building them takes a single pass over the data, so the cost is linear in the length of "
    "the input, and the memory needed is one extra number per element. The same idea appears "
    "in image processing as summed-area tables and in databases as cumulative aggregates.\n"
)

EDU = """### Task
Write a function `pair_sums(nums, target)` that returns how many pairs (i < j) of the list
`nums` add up to `target`. Example: pair_sums([1, 2, 3, 4], 5) == 2.

### Analysis
Count values seen so far in a dictionary; for each value, the number of earlier partners is
the count of `target - value`. This is O(n) time and O(n) memory.

### Solution
```python
def pair_sums(nums, target):
    seen = {}
    total = 0
    for x in nums:
        total += seen.get(target - x, 0)
        seen[x] = seen.get(x, 0) + 1
    return total
```

### Tests
```python
assert pair_sums([1, 2, 3, 4], 5) == 2
assert pair_sums([], 1) == 0
```
"""

PACKAGE = """### Problem
Given a list of integers, return the k largest values in descending order using a heap.

### Solution
```python
import heapq

def top_k(values, k):
    return heapq.nlargest(k, values)
```

### Tests
```python
assert top_k([5, 1, 9, 3], 2) == [9, 5]
```
"""

DIVERSE = """### Instruction
Write a Python function `count_words(text)` that returns the number of words in a sentence.

### Response
Split on whitespace and count the pieces.

```python
def count_words(text):
    return len(text.split())
```

### Tests
```python
assert count_words("a b c") == 3
assert count_words("") == 0
```
"""

ANNOTATED = """```python
def count_words(text):
    # str.split() with no argument splits on runs of whitespace and drops empty pieces
    return len(text.split())
```
"""


def yes(yes_logprob: float = -0.1, no_logprob: float = -2.5) -> Reply:
    return Reply("YES", top_logprobs=[{"YES": yes_logprob, "NO": no_logprob, " yes": -4.0}])


def install(
    server: FakeOpenAIServer, *, yes_logprob: float = -0.1, no_logprob: float = -2.5
) -> None:
    """Route every synth prompt to a valid scripted answer."""
    server.route("Reply with only YES or NO", yes(yes_logprob, no_logprob))
    server.route("Write ONE self-contained Python function", SNIPPET)
    server.route("Write a textbook section", TEXTBOOK)
    server.route("write a NEW self-contained Python programming", EDU)
    server.route("Here is the documentation of", PACKAGE)
    server.route("Seed text from the web", DIVERSE)
    server.route("Add concise comments", ANNOTATED)
