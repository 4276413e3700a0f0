"""The reference cache's record: Reference.to_json is its fields, in order, and reads back."""

from __future__ import annotations

import json

from codekiln.eval.execute import Reference


def test_reference_json_is_its_fields_and_round_trips() -> None:
    """The cached JSON text is what the hand-written mapping wrote, and from_json restores it."""
    ref = Reference(times_s=[0.5, 1.25], expected=["gASV", "gASX"], errors=1, failure="")
    text = json.dumps(ref.to_json())
    assert text == (
        '{"times_s": [0.5, 1.25], "expected": ["gASV", "gASX"], "errors": 1, "failure": ""}'
    )
    back = Reference.from_json(json.loads(text))
    assert back == ref
