"""codekiln.checks: the bounds declared on config fields, and every config that declares them
rejecting the bad values it rejected when each spelled its own checks."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from codekiln.eval.errors import ConfigError as EvalConfigError
from codekiln.eval.generate import GenConfig
from codekiln.eval.limits import ExecConfig
from codekiln.stream.dedup.minhash import MinHashParams
from codekiln.stream.preprocess import LanguageStage
from codekiln.stream.webclf.domains import IterationParams
from codekiln.stream.webclf.model import TrainParams, WebClfError
from codekiln.synth.config import SynthConfig
from codekiln.synth.errors import ConfigError as SynthConfigError
from codekiln.synth.llm import LLMConfig, SamplingParams

from codekiln.checks import bound, check_bounds, check_types, check_value, one_of, yaml_numbers


class Oops(Exception):
    """The error class a config passes to check_bounds."""


@dataclass(frozen=True, slots=True)
class Sample:
    count: int = bound(1, ">= 1")
    ratio: float = bound(0.5, "(0, 1]")
    share: float = bound(0.0, "[0, 1)")
    limit: float | None = bound(None, "> 0")
    cap: int = bound(5, "<= 10")
    mode: str = one_of("fast", ("fast", "slow"))
    free: int = 3

    def __post_init__(self) -> None:
        check_bounds(self, "sample", Oops)


class TestBounds:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"count": 0}, "sample.count must be an integer >= 1, got 0"),
            ({"count": 2.0}, "sample.count must be an integer >= 1, got 2.0"),
            ({"count": True}, "sample.count must be an integer >= 1, got True"),
            ({"count": "3"}, "sample.count must be an integer >= 1, got '3'"),
            ({"ratio": 0}, "sample.ratio must be a number in (0, 1], got 0"),
            ({"ratio": 1.5}, "sample.ratio must be a number in (0, 1], got 1.5"),
            ({"ratio": math.nan}, "sample.ratio must be a number in (0, 1], got nan"),
            ({"ratio": None}, "sample.ratio must be a number in (0, 1], got None"),
            ({"share": 1}, "sample.share must be a number in [0, 1), got 1"),
            ({"limit": 0.0}, "sample.limit must be a number > 0 or null, got 0.0"),
            ({"cap": 11}, "sample.cap must be an integer <= 10, got 11"),
            ({"mode": "quick"}, "sample.mode must be one of fast, slow, got 'quick'"),
            ({"mode": None}, "sample.mode must be one of fast, slow, got None"),
        ],
    )
    def test_a_bad_value_is_refused_with_one_message_shape(
        self, kwargs: dict[str, Any], message: str
    ) -> None:
        """The field's section, name, kind, limits and the value, in the caller's error class."""
        with pytest.raises(Oops) as info:
            Sample(**kwargs)
        assert str(info.value) == message

    def test_boundaries_and_unbounded_fields_pass(self) -> None:
        """Closed ends are inside, an int is a number, None passes where the default is None."""
        got = Sample(count=1, ratio=1, share=0.0, limit=None, cap=10, free=-7)
        assert (got.count, got.ratio, got.share, got.limit, got.cap, got.free) == (
            1, 1, 0.0, None, 10, -7
        )  # fmt: skip
        assert Sample(limit=2).limit == 2

    def test_limits_are_read_loosely_and_stated_one_way(self) -> None:
        """Spacing in the limits text does not matter; the message states them one way."""

        @dataclass(frozen=True)
        class Tight:
            ratio: float = bound(0.5, "(0,1]")
            low: int = bound(3, ">=2")

            def __post_init__(self) -> None:
                check_bounds(self, "", Oops)

        with pytest.raises(Oops, match=r"^ratio must be a number in \(0, 1\], got 0$"):
            Tight(ratio=0)
        with pytest.raises(Oops, match=r"^low must be an integer >= 2, got 1$"):
            Tight(low=1)

    def test_no_section_gives_the_bare_name(self) -> None:
        """A config without a section (SamplingParams) names the field alone."""
        with pytest.raises(SynthConfigError) as info:
            SamplingParams(n=0)
        assert str(info.value) == "n must be an integer >= 1, got 0"

    def test_a_value_outside_any_dataclass_is_checked_the_same_way(self) -> None:
        """check_value: the same kinds, limits and message for a stage's keyword option."""
        check_value("stage.share", 1, "[0, 1]", Oops)
        with pytest.raises(Oops, match=r"^stage\.share must be a number in \[0, 1\], got 1\.5$"):
            check_value("stage.share", 1.5, "[0, 1]", Oops)
        with pytest.raises(Oops, match=r"^stage\.n must be an integer >= 0, got True$"):
            check_value("stage.n", True, ">= 0", Oops, integer=True)

    @pytest.mark.parametrize(
        ("call", "message"),
        [
            (lambda: bound(0, ">= 1"), "the default 0 is not an integer >= 1"),
            (lambda: bound(1.0, "0 < x"), "are not '>= n'"),
            (lambda: one_of("fast", ("slow",)), "the default 'fast' is not one of slow"),
            (lambda: bound(1.0, "[0, one]"), "'one' in limits '\\[0, one\\]' is not a number"),
        ],
    )
    def test_a_bad_declaration_fails_at_import(
        self, call: Callable[[], object], message: str
    ) -> None:
        """A default outside its own limits, or limits it cannot read, is a TypeError."""
        with pytest.raises(TypeError, match=message):
            call()


def _llm(**kw: Any) -> LLMConfig:
    return LLMConfig(endpoints=("http://127.0.0.1:1",), **kw)


def _gen(**kw: Any) -> GenConfig:
    return GenConfig(endpoint="http://127.0.0.1:1", **kw)


#: Values each config refuses. All but three it refused when it spelled its own checks; new
#: are ``num_perm=True`` (taken as 1 before) and every TrainParams and IterationParams row
#: (nothing was checked: fastText or the recall loop met the bad value).
REFUSED: list[tuple[Callable[..., object], type[Exception], dict[str, Any]]] = [
    (SynthConfig, SynthConfigError, {"max_seeds": -1, "concurrency": 0, "samples_per_seed": 0}),
    (SynthConfig, SynthConfigError, {"deadline_s": 0, "autods_threshold": 2}),
    (SynthConfig, SynthConfigError, {"autods_top_fraction": 0, "decontam_max_overlap_ratio": 1}),
    (SynthConfig, SynthConfigError, {"autods_api": "json", "ingest_classifier": "svm"}),
    (_llm, SynthConfigError, {"max_retries": -1, "backoff_base_s": 0, "max_stop_strings": 0}),
    (SamplingParams, SynthConfigError, {"n": 0, "max_tokens": 0, "top_logprobs": 21}),
    (SamplingParams, SynthConfigError, {"temperature": -0.1, "top_p": 0}),
    (SamplingParams, SynthConfigError, {"top_p": 1.01, "top_logprobs": -1}),
    (_gen, EvalConfigError, {"samples": 0, "temperature": -1, "concurrency": 0, "mode": "chat"}),
    (ExecConfig, EvalConfigError, {"job_cpu_s": 0, "sandbox_max_timeout_s": -1.0}),
    (ExecConfig, EvalConfigError, {"memory_mb": 0, "concurrency": 1.5, "error_retries": -1}),
    (ExecConfig, EvalConfigError, {"part_timeout_extra_s": -0.5}),
    (MinHashParams, ValueError, {"bands": 0, "ngram": 2.5, "seed": -1}),
    (MinHashParams, ValueError, {"seed": 2**63, "num_perm": True}),
    (TrainParams, WebClfError, {"dim": 0, "lr": 0.0, "threads": 0, "bucket": -1}),
    (IterationParams, WebClfError, {"rounds": -1, "domain_min_share": 1.5}),
    (LanguageStage, ValueError, {"min_chars": -1, "max_bytes": 1.5, "max_replacement_frac": 2}),
]
#: The boundary values next to them, which each config accepts.
ACCEPTED: list[tuple[Callable[..., object], dict[str, Any]]] = [
    (SynthConfig, {"max_seeds": 0, "concurrency": 1, "samples_per_seed": 1}),
    (SynthConfig, {"autods_threshold": 1, "autods_top_fraction": 1}),
    (SynthConfig, {"decontam_max_overlap_ratio": 0.0, "deadline_s": 1e-3}),
    (SynthConfig, {"autods_api": "completions", "ingest_classifier": "llm"}),
    (_llm, {"max_retries": 0, "max_stop_strings": 1}),
    (SamplingParams, {"n": 1, "max_tokens": 1, "top_logprobs": 20, "temperature": 0}),
    (SamplingParams, {"top_p": 1}),
    (_gen, {"samples": 1, "temperature": 0, "concurrency": 1, "mode": "instruct"}),
    (ExecConfig, {"memory_mb": 1, "error_retries": 0, "part_timeout_extra_s": 0}),
    (MinHashParams, {"num_perm": 1, "bands": 1, "rows": 1, "ngram": 1, "seed": 0}),
    (MinHashParams, {"seed": 2**63 - 1}),
    (TrainParams, {"dim": 1, "bucket": 0, "seed": -5}),
    (IterationParams, {"rounds": 0, "domain_min_share": 1, "negative_max_share": 0}),
    (LanguageStage, {"min_chars": 0, "max_replacement_frac": 1}),
]


@pytest.mark.parametrize(
    ("make", "name", "value", "error"),
    [(make, name, value, error) for make, error, bad in REFUSED for name, value in bad.items()],
)
def test_each_config_refuses_a_value_outside_its_bounds(
    make: Callable[..., object], name: str, value: Any, error: type[Exception]
) -> None:
    """The config raises its component's error class naming the field and the value."""
    with pytest.raises(error) as info:
        make(**{name: value})
    message = str(info.value)
    assert f"{name} must be " in message
    assert message.endswith(f", got {value!r}")


@pytest.mark.parametrize(("make", "values"), ACCEPTED)
def test_each_config_accepts_its_boundary_values(
    make: Callable[..., object], values: dict[str, Any]
) -> None:
    """A value on a closed end of a bound, or an unbounded field's odd value, is kept."""
    config = make(**values)
    assert {name: getattr(config, name) for name in values} == values


@dataclass(frozen=True)
class Typed:
    name: str = "x"
    steps: int = 1
    rate: float = 0.5
    flag: bool = False
    note: str | None = None
    limit: float | None = None
    other: tuple[int, ...] = ()


class TestCheckTypes:
    @pytest.mark.parametrize(
        ("field", "value", "said"),
        [
            ("name", 5, "t.name must be a string, got 5"),
            ("steps", "3", "t.steps must be an integer, got '3'"),
            ("steps", 2.0, "t.steps must be an integer, got 2.0"),
            ("steps", True, "t.steps must be an integer, got True"),
            ("rate", "fast", "t.rate must be a number, got 'fast'"),
            ("rate", False, "t.rate must be a number, got False"),
            ("flag", "yes", "t.flag must be true or false, got 'yes'"),
            ("flag", 1, "t.flag must be true or false, got 1"),
            ("note", 7, "t.note must be a string, got 7"),
            ("limit", [1], "t.limit must be a number, got [1]"),
        ],
    )
    def test_a_value_of_another_type_is_refused(self, field: str, value: object, said: str) -> None:
        with pytest.raises(Oops) as err:
            check_types(Typed(**{field: value}), "t", Oops)  # type: ignore[arg-type]
        assert str(err.value) == said

    def test_the_declared_types_pass(self) -> None:
        """An int is a number; None passes where declared; other annotations are not checked."""
        check_types(Typed(rate=2, note=None, limit=3, other=("not", "ints")), "t", Oops)  # type: ignore[arg-type]
        check_types(Typed(name="n", steps=0, rate=0.0, flag=True, note="s", limit=0.5), "", Oops)

    def test_yaml_numbers_makes_yaml_1_1_text_floats(self) -> None:
        """'3e-4' (YAML 1.1 text) becomes a float for float fields only; other text is kept."""
        raw = {"rate": "3e-4", "limit": "1E3", "name": "1e3", "steps": "5", "note": "nan"}
        assert yaml_numbers(Typed, raw) == {
            "rate": 3e-4, "limit": 1000.0, "name": "1e3", "steps": "5", "note": "nan",
        }  # fmt: skip
        assert yaml_numbers(Typed, {"rate": "inf"}) == {"rate": "inf"}
        assert yaml_numbers(Typed, {"rate": "fast"}) == {"rate": "fast"}
