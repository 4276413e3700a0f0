"""The run configuration: one YAML file, validated into frozen objects at the entry point.

Unknown keys and bad values fail with an exact message naming the key path, before any work
starts, e.g.::

    config: stages[2].options: unknown key 'thresold' for stage 'filters' (known: ...)

Every problem in the file is reported at once, one line each, in one :class:`ConfigError`.

Example (every key optional; the values shown are the defaults)::

    input:
      format: auto              # auto | files | jsonl | parquet
      text_key: text            # JSONL / Parquet field holding the document
      id_key: id                # JSONL / Parquet field holding a stable id, if any
      max_file_bytes: 1000000   # larger files / lines are quarantined as reader:oversize
      max_files: null           # stop after this many files (JSONL/Parquet: records); reported
      max_bytes: null           # stop after this many bytes of admitted input (500M, 2G)
      exclude_dirs: [.git, .hg, .svn, __pycache__]
    stages:                     # omitted: the default RefineCode pipeline as far as it exists
      - preprocess              # a registry name ...
      - name: filters           # ... or name + options (the stage's __init__ keyword arguments)
        options: {threshold: 0.5}
      - name: mypkg.stages:MyStage   # an import path also works
    runtime:
      batch_size: 512
      batch_max_chars: 1000000  # a batch also closes at this much text; 0 = no limit
      queue_batches: 4
      workers: 0                # process-pool size for cpu_bound stages; 0 = one per core
      checkpoint_every_records: 5000
    output:
      format: jsonl.zst         # jsonl.zst | parquet
      shard_max_records: 100000
      shard_max_bytes: 256M     # byte counts take 500M / 2G / 64KiB / 409e9 too
      zstd_level: 3
    worker:
      watch_dir: null           # worker mode: folder where input shards appear
      out_dir: null
      poll_interval_s: 1.0
      metrics_host: 127.0.0.1
      metrics_port: 9464
      worker_id: null           # default: <hostname>-<pid>

The sections for what happens once the corpus is committed belong to the layer above the
engine: :mod:`codekiln.flow` reads them from the same file and hands the rest to
:func:`config_from_dict`.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from codekiln.stream import registry
from codekiln.stream.runtime.errors import ConfigError
from codekiln.stream.stage import Stage

from codekiln.units import SizeError, parse_size


def _spec(kind: str, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, **kw}


@dataclass(frozen=True)
class InputConfig:
    format: str = field(
        default="auto", metadata=_spec("choice", choices=("auto", "files", "jsonl", "parquet"))
    )
    text_key: str = field(default="text", metadata=_spec("str"))
    id_key: str = field(default="id", metadata=_spec("str"))
    max_file_bytes: int = field(default=1_000_000, metadata=_spec("size", min=1))
    max_files: int | None = field(default=None, metadata=_spec("int", min=1, optional=True))
    max_bytes: int | None = field(default=None, metadata=_spec("size", min=1, optional=True))
    exclude_dirs: tuple[str, ...] = field(
        default=(".git", ".hg", ".svn", "__pycache__"), metadata=_spec("strlist")
    )


@dataclass(frozen=True)
class StageConfig:
    """One pipeline step: a registry name (or ``module:Class``) and its validated options."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RuntimeConfig:
    batch_size: int = field(default=512, metadata=_spec("int", min=1))
    batch_max_chars: int = field(default=1_000_000, metadata=_spec("int", min=0))
    queue_batches: int = field(default=4, metadata=_spec("int", min=1))
    workers: int = field(default=0, metadata=_spec("int", min=0))
    checkpoint_every_records: int = field(default=5_000, metadata=_spec("int", min=1))


@dataclass(frozen=True)
class OutputConfig:
    format: str = field(
        default="jsonl.zst", metadata=_spec("choice", choices=("jsonl.zst", "parquet"))
    )
    shard_max_records: int = field(default=100_000, metadata=_spec("int", min=1))
    shard_max_bytes: int = field(default=256 * 1024 * 1024, metadata=_spec("size", min=1))
    zstd_level: int = field(default=3, metadata=_spec("int", min=1, max=22))


@dataclass(frozen=True)
class WorkerConfig:
    watch_dir: str | None = field(default=None, metadata=_spec("str", optional=True))
    out_dir: str | None = field(default=None, metadata=_spec("str", optional=True))
    poll_interval_s: float = field(default=1.0, metadata=_spec("float", min=0.01))
    metrics_host: str = field(default="127.0.0.1", metadata=_spec("str"))
    metrics_port: int = field(default=9464, metadata=_spec("int", min=0, max=65535))
    worker_id: str | None = field(default=None, metadata=_spec("str", optional=True))


@dataclass(frozen=True)
class StreamConfig:
    input: InputConfig = field(default_factory=InputConfig)
    #: ``None``: the default pipeline (registry.DEFAULT_PIPELINE, stages that exist).
    stages: tuple[StageConfig, ...] | None = None
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    worker: WorkerConfig = field(default_factory=WorkerConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the checkpoint fingerprint and the manifest)."""
        out = dataclasses.asdict(self)
        if self.stages is not None:
            out["stages"] = [{"name": s.name, "options": dict(s.options)} for s in self.stages]
        return out


_SECTIONS: dict[str, type[Any]] = {
    "input": InputConfig,
    "runtime": RuntimeConfig,
    "output": OutputConfig,
    "worker": WorkerConfig,
}
#: The engine's top-level keys, in the order an unknown key's message lists them.
TOP_KEYS = (*_SECTIONS, "stages")


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"config: {where}: {message}" if where else f"config: {message}")


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _check_value(where: str, spec: Mapping[str, Any], value: Any) -> Any:
    kind = spec["kind"]
    if value is None:
        if spec.get("optional"):
            return None
        raise _fail(where, "must not be null")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, f"expected an integer, got {_describe(value)}")
    elif kind == "size":
        # Bytes: an integer, or 500M / 2G / 64KiB / 409e9 (codekiln.units, as the CLI flags).
        if isinstance(value, float) and not value.is_integer():
            raise _fail(where, f"expected a size in bytes, got {_describe(value)}")
        try:
            value = parse_size(value)
        except SizeError as exc:
            raise _fail(where, str(exc)) from None
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(where, f"expected a number, got {_describe(value)}")
        value = float(value)
    elif kind == "str":
        if not isinstance(value, str) or not value:
            raise _fail(where, f"expected a non-empty string, got {_describe(value)}")
    elif kind == "choice":
        if value not in spec["choices"]:
            choices = ", ".join(spec["choices"])
            raise _fail(where, f"expected one of {choices}, got {_describe(value)}")
    elif kind == "strlist":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise _fail(where, f"expected a list of strings, got {_describe(value)}")
        value = tuple(value)
    if "min" in spec and value < spec["min"]:
        raise _fail(where, f"must be >= {spec['min']}, got {value!r}")
    if "max" in spec and value > spec["max"]:
        raise _fail(where, f"must be <= {spec['max']}, got {value!r}")
    return value


def _section(name: str, cls: type[Any], raw: Any) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, Mapping):
        raise _fail(name, f"expected a mapping, got {_describe(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in raw:
        if key not in fields:
            problems.append(str(_fail(name, f"unknown key {key!r} (known: {', '.join(fields)})")))
            continue
        try:
            values[key] = _check_value(f"{name}.{key}", fields[key].metadata, raw[key])
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return cls(**values)


def resolve_stage(where: str, name: str) -> type[Stage]:
    """The class a config names (registry name or ``module:Class``); errors name ``where``."""
    if ":" in name and name not in registry.STAGES:
        module_name, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise _fail(where, f"cannot import stage {name!r}: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            raise _fail(where, f"{name!r} is not a Stage subclass")
        return cls
    if name not in registry.STAGES:
        known = ", ".join(sorted(registry.STAGES))
        raise _fail(where, f"unknown stage {name!r} (known: {known}; or module:Class)")
    try:
        return registry.resolve(name)
    except (ImportError, AttributeError, TypeError) as exc:
        raise _fail(where, f"stage {name!r} is registered but cannot be loaded: {exc}") from exc


def stage_option_names(cls: type[Stage]) -> tuple[list[str], list[str], bool]:
    """(all keyword options, required ones, whether **kwargs is accepted) of a stage class."""
    if cls.__init__ is object.__init__:
        return [], [], False
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    names, required, var_kw = [], [], False
    for p in params:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var_kw = True
        elif p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.append(p.name)
            if p.default is inspect.Parameter.empty:
                required.append(p.name)
    return names, required, var_kw


def _type_ok(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` fits the annotation; ``None`` when the annotation is too rich to check."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        results = [_type_ok(value, arg) for arg in typing.get_args(hint)]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    base = origin or hint
    if base in (list, tuple, typing.Sequence) or base is getattr(typing, "Sequence", None):
        return isinstance(value, list | tuple)
    if base in (dict, Mapping):
        return isinstance(value, Mapping)
    return None


def validate_stage_options(where: str, name: str, cls: type[Stage], options: Any) -> dict[str, Any]:
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise _fail(f"{where}.options", f"expected a mapping, got {_describe(options)}")
    names, required, var_kw = stage_option_names(cls)
    problems: list[ConfigError] = []
    if not var_kw:
        for key in options:
            if key not in names:
                known = ", ".join(names) if names else "none"
                problems.append(
                    _fail(
                        f"{where}.options",
                        f"unknown key {key!r} for stage {name!r} (known: {known})",
                    )
                )
    for key in required:
        if key not in options:
            problems.append(
                _fail(f"{where}.options", f"missing required option {key!r} for stage {name!r}")
            )
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:
        hints = {}
    for key, value in options.items():
        if key in hints and _type_ok(value, hints[key]) is False:
            problems.append(
                _fail(
                    f"{where}.options.{key}",
                    f"expected {_hint_name(hints[key])} for stage {name!r}, got {_describe(value)}",
                )
            )
    if problems:
        raise ConfigError("\n".join(str(p) for p in problems))
    return dict(options)


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _stages(raw: Any) -> tuple[StageConfig, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _fail("stages", f"expected a list, got {_describe(raw)}")
    if not raw:
        raise _fail("stages", "the list is empty (omit the key for the default pipeline)")
    out = []
    problems: list[str] = []
    for i, item in enumerate(raw):
        # Each step is checked on its own: every bad step is reported, not only the first.
        try:
            out.append(_stage(f"stages[{i}]", item))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return tuple(out)


def _stage(where: str, item: Any) -> StageConfig:
    options: Any = None
    if isinstance(item, str):
        name = item
    elif isinstance(item, Mapping):
        for key in item:
            if key not in ("name", "options"):
                raise _fail(where, f"unknown key {key!r} (known: name, options)")
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise _fail(where, "needs a 'name' (a registered stage or module:Class)")
        name, options = item["name"], item.get("options")
    else:
        raise _fail(where, f"expected a stage name or a mapping, got {_describe(item)}")
    cls = resolve_stage(where, name)
    return StageConfig(name, validate_stage_options(where, name, cls, options))


def config_from_dict(raw: Any, *, known_above: Sequence[str] = ()) -> StreamConfig:
    """Validate the engine's sections of a config mapping into a :class:`StreamConfig`.

    ``known_above``: top-level keys that belong to the layer above the engine (its caller
    reads them); they are skipped here and listed among the known keys in messages.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise _fail("", f"the file must hold a mapping at the top, got {_describe(raw)}")
    known = (*TOP_KEYS, *known_above)
    # Every section is checked, whatever another one holds: the ConfigError raised lists
    # every problem found, one line each (a single problem reads as it always has).
    problems = [
        str(_fail("", f"unknown key {key!r} (known: {', '.join(known)})"))
        for key in raw
        if key not in known
    ]
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        try:
            sections[name] = _section(name, cls, raw.get(name))
        except ConfigError as exc:
            problems.append(str(exc))
    stages: tuple[StageConfig, ...] | None = None
    try:
        stages = _stages(raw.get("stages"))
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return StreamConfig(stages=stages, **sections)


def read_config_file(path: str | Path) -> Any:
    """The parsed YAML of a config file; unreadable or invalid files fail with one line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config: {path} is not UTF-8 text") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {exc}") from exc


def load_config(path: str | Path | None) -> StreamConfig:
    """Read and validate a YAML config file (``None``: all defaults)."""
    if path is None:
        return config_from_dict({})
    return config_from_dict(read_config_file(path))
