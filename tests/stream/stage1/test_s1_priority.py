"""Survivor priority keys: a total order that follows the configured directions."""

from __future__ import annotations

import pytest
from codekiln.stream.dedup.priority import parse_priority, sort_key
from hypothesis import given
from hypothesis import strategies as st
from s1_helpers import make_record


@given(a=st.text(max_size=12), b=st.text(max_size=12))
def test_descending_strings_reverse_order(a: str, b: str) -> None:
    """For any two strings, the desc key orders them in reverse of the asc key."""
    terms = parse_priority(["updated_at:desc"])
    ka = sort_key(make_record("x", "", updated_at=a), terms)[0]
    kb = sort_key(make_record("x", "", updated_at=b), terms)[0]
    assert (ka < kb) == (a > b)


@given(a=st.one_of(st.none(), st.integers(), st.text(max_size=5)),
       b=st.one_of(st.none(), st.integers(), st.text(max_size=5)))  # fmt: skip
def test_mixed_values_always_comparable(a: object, b: object) -> None:
    """Missing, numeric and string values never raise when compared; missing sorts last."""
    terms = parse_priority(["stars:desc"])
    ka = sort_key(make_record("x", "", stars=a), terms)
    kb = sort_key(make_record("x", "", stars=b), terms)
    assert (ka < kb) or (ka > kb) or (ka == kb)
    if a is None and b is not None:
        assert ka[0] > kb[0]


def test_id_appended_as_tiebreak() -> None:
    """Without an id term, id is appended so two records never tie."""
    assert parse_priority(["path"])[-1] == ("id", False)
    assert parse_priority(["id:desc", "path"]) == (("id", True), ("path", False))


def test_bad_term() -> None:
    """An empty term is refused with the offending value."""
    with pytest.raises(ValueError, match="non-empty"):
        parse_priority([""])
