"""The training configuration: one frozen object, built once from YAML at the entry point.

Every derived number (gradient accumulation, DeepSpeed batch fields, the sequence length at a
step) is computed from this object, so the trainer, the DeepSpeed config and the Kubernetes
manifests cannot disagree. Validation happens in :func:`TrainConfig.from_dict`, before anything
touches a GPU, a tokenizer or a cluster.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from codekiln.train.errors import ConfigError

from codekiln.checks import check_types, yaml_numbers

STAGES = ("pretrain", "anneal", "sft1", "sft2")
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True, slots=True)
class SeqLenPhase:
    """``seq_len`` is used for steps before ``until_step`` (``None``: to the end)."""

    seq_len: int
    until_step: int | None = None


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One stream of a mixture: records whose ``meta`` matches ``match`` get weight ``weight``.

    ``match`` maps a meta key to the value it must have; an empty ``match`` takes every record
    not claimed by another stream (the original distribution).
    """

    name: str
    weight: float
    match: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    preset: str = "tiny"
    init_from: str | None = None  # a transformers checkpoint dir (anneal and SFT start here)
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DataConfig:
    corpus_dir: str = ""
    tokenizer_path: str = ""
    eos_token: str = "<|endoftext|>"
    seq_len_schedule: tuple[SeqLenPhase, ...] = (
        SeqLenPhase(seq_len=4096, until_step=130_000),
        SeqLenPhase(seq_len=8192),
    )
    streams: tuple[StreamSpec, ...] = ()
    # SFT: the chat template's special tokens; they must exist in the tokenizer.
    im_start: str = "<|im_start|>"
    im_end: str = "<|im_end|>"
    pad_token: str = "<|pad|>"


@dataclass(frozen=True, slots=True)
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    warmup_steps: int = 2000
    decay_steps: int = 0  # 0: the last 10% of total_steps
    total_steps: int = 10_000
    min_lr_ratio: float = 0.0
    decay_type: str = "cosine"
    grad_clip: float = 1.0


@dataclass(frozen=True, slots=True)
class BatchConfig:
    global_batch: int = 1024  # sequences per optimiser step, all ranks together
    micro_batch: int = 1  # sequences per forward pass on one rank
    grad_accum: int | None = None  # None: global_batch / (micro_batch * world_size)

    def accumulation(self, world_size: int) -> int:
        """Gradient-accumulation steps for ``world_size`` ranks; raises on an impossible split."""
        if world_size < 1:
            raise ConfigError(f"world_size must be >= 1, got {world_size}")
        per_pass = self.micro_batch * world_size
        if self.grad_accum is not None:
            if self.micro_batch * self.grad_accum * world_size != self.global_batch:
                raise ConfigError(
                    f"batch.global_batch={self.global_batch} != batch.micro_batch="
                    f"{self.micro_batch} x batch.grad_accum={self.grad_accum} x world_size="
                    f"{world_size} (= {self.micro_batch * self.grad_accum * world_size})"
                )
            return self.grad_accum
        if self.global_batch % per_pass:
            raise ConfigError(
                f"batch.global_batch={self.global_batch} is not divisible by batch.micro_batch="
                f"{self.micro_batch} x world_size={world_size} (= {per_pass}): no integer "
                "gradient accumulation gives that global batch"
            )
        return self.global_batch // per_pass


@dataclass(frozen=True, slots=True)
class DeepSpeedConfig:
    zero_stage: int = 0  # 0: plain torch (DDP when distributed); 1, 2, 3: DeepSpeed ZeRO
    offload_optimizer: bool = False
    offload_param: bool = False
    # A DeepSpeed JSON file to use instead of the generated one (Kubernetes mounts the rendered
    # file here); its batch fields must agree with this config.
    config_file: str | None = None


@dataclass(frozen=True, slots=True)
class CheckpointConfig:
    dir: str = "checkpoints"
    every_steps: int = 1000
    keep_last: int = 2
    export_dir: str | None = None  # transformers-format model + tokenizer at the end


@dataclass(frozen=True, slots=True)
class TrainConfig:
    stage: str = "pretrain"
    seed: int = 1234
    precision: str = "auto"
    log_every_steps: int = 10
    # Deterministic GPU kernels (torch.use_deterministic_algorithms): bit-identical resumes on
    # GPU at some speed cost. CPU runs are deterministic either way.
    deterministic: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    # ----- derived values

    def seq_len_at(self, step: int) -> int:
        """The packed sequence length used at optimiser step ``step`` (0-based)."""
        for phase in self.data.seq_len_schedule:
            if phase.until_step is None or step < phase.until_step:
                return phase.seq_len
        return self.data.seq_len_schedule[-1].seq_len

    @property
    def max_seq_len(self) -> int:
        return max(p.seq_len for p in self.data.seq_len_schedule)

    @property
    def decay_steps(self) -> int:
        return self.optim.decay_steps or max(1, self.optim.total_steps // 10)

    def streams(self) -> tuple[StreamSpec, ...]:
        """The mixture's streams; a stage without explicit streams gets its default mixture."""
        if self.data.streams:
            return self.data.streams
        if self.stage == "anneal":
            # OpenCoder's annealing mix: 84% original distribution, 16% high-quality
            # algorithmic and synthetic data.
            return (
                StreamSpec("original", 0.84),
                StreamSpec("high_quality", 0.16, {"corpus": "anneal"}),
            )
        return (StreamSpec("original", 1.0),)

    # ----- loading

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, base_dir: Path | None = None) -> TrainConfig:
        """Build and validate; relative paths are resolved against ``base_dir``."""
        if not isinstance(raw, dict):
            raise ConfigError("the training config must be a mapping")
        _reject_unknown(raw, cls, "")
        sections: dict[str, Any] = {}
        for name, klass in (
            ("model", ModelConfig),
            ("optim", OptimConfig),
            ("batch", BatchConfig),
            ("deepspeed", DeepSpeedConfig),
            ("checkpoint", CheckpointConfig),
        ):
            sub = raw.get(name) or {}
            if not isinstance(sub, dict):
                raise ConfigError(f"{name}: must be a mapping")
            _reject_unknown(sub, klass, name + ".")
            sections[name] = _build(klass, sub, name + ".")
        sections["data"] = _data_config(raw.get("data") or {})
        for k in ("stage", "seed", "precision", "log_every_steps", "deterministic"):
            if k in raw:
                sections[k] = raw[k]
        cfg: TrainConfig = _build(cls, sections, "")
        if base_dir is not None:
            cfg = cfg.resolve_paths(base_dir)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read training config {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        return cls.from_dict(raw or {}, base_dir=path.parent)

    def resolve_paths(self, base_dir: Path) -> TrainConfig:
        def res(p: str | None) -> str | None:
            if not p:
                return p
            q = Path(p)
            return str(q if q.is_absolute() else (base_dir / q))

        return dataclasses.replace(
            self,
            model=dataclasses.replace(self.model, init_from=res(self.model.init_from)),
            data=dataclasses.replace(
                self.data,
                corpus_dir=res(self.data.corpus_dir) or "",
                tokenizer_path=res(self.data.tokenizer_path) or "",
            ),
            checkpoint=dataclasses.replace(
                self.checkpoint,
                dir=res(self.checkpoint.dir) or "",
                export_dir=res(self.checkpoint.export_dir),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self, world_size: int = 1) -> None:
        """Raise :class:`ConfigError` with an exact message for anything that cannot run."""
        from codekiln.train.presets import PRESETS

        if self.stage not in STAGES:
            raise ConfigError(f"stage: unknown stage {self.stage!r} (one of {', '.join(STAGES)})")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision: unknown {self.precision!r} (one of {', '.join(PRECISIONS)})"
            )
        if self.model.preset not in PRESETS:
            raise ConfigError(
                f"model.preset: unknown preset {self.model.preset!r} "
                f"(one of {', '.join(sorted(PRESETS))})"
            )
        b = self.batch
        for name, value in (("global_batch", b.global_batch), ("micro_batch", b.micro_batch)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"batch.{name} must be a positive integer, got {value!r}")
        if b.grad_accum is not None and (not isinstance(b.grad_accum, int) or b.grad_accum < 1):
            raise ConfigError(f"batch.grad_accum must be a positive integer, got {b.grad_accum!r}")
        b.accumulation(world_size)
        o = self.optim
        if not o.lr > 0:
            raise ConfigError(f"optim.lr must be > 0, got {o.lr}")
        if o.total_steps < 1:
            raise ConfigError(f"optim.total_steps must be >= 1, got {o.total_steps}")
        if o.warmup_steps < 0 or o.warmup_steps + self.decay_steps > o.total_steps:
            raise ConfigError(
                f"optim.warmup_steps={o.warmup_steps} + decay steps={self.decay_steps} exceed "
                f"optim.total_steps={o.total_steps}: the WSD schedule has no room"
            )
        if o.decay_type not in ("linear", "cosine", "1-sqrt"):
            raise ConfigError(f"optim.decay_type: unknown {o.decay_type!r}")
        if o.grad_clip < 0:
            raise ConfigError(f"optim.grad_clip must be >= 0, got {o.grad_clip}")
        if self.deepspeed.zero_stage not in (0, 1, 2, 3):
            raise ConfigError(
                f"deepspeed.zero_stage must be 0, 1, 2 or 3, got {self.deepspeed.zero_stage}"
            )
        sched = self.data.seq_len_schedule
        if not sched:
            raise ConfigError("data.seq_len_schedule must have at least one phase")
        last = -1
        for i, phase in enumerate(sched):
            if phase.seq_len < 2:
                raise ConfigError(f"data.seq_len_schedule[{i}].seq_len must be >= 2")
            if phase.until_step is None and i != len(sched) - 1:
                raise ConfigError(
                    f"data.seq_len_schedule[{i}]: only the last phase may omit until_step"
                )
            if phase.until_step is not None:
                if phase.until_step <= last:
                    raise ConfigError("data.seq_len_schedule: until_step must increase")
                last = phase.until_step
        streams = self.streams()
        if any(s.weight <= 0 for s in streams):
            raise ConfigError("data.streams: every weight must be > 0")
        if sum(1 for s in streams if not s.match) > 1:
            raise ConfigError("data.streams: at most one stream may have an empty match")
        if self.checkpoint.every_steps < 1:
            raise ConfigError("checkpoint.every_steps must be >= 1")


def _field_names(klass: type) -> set[str]:
    return {f.name for f in dataclasses.fields(klass)}


def _reject_unknown(raw: dict[str, Any], klass: type, prefix: str) -> None:
    unknown = sorted(set(raw) - _field_names(klass))
    if unknown:
        raise ConfigError(
            f"unknown config key(s): {', '.join(prefix + k for k in unknown)} "
            f"(known: {', '.join(sorted(prefix + k for k in _field_names(klass)))})"
        )


def _build(klass: type, raw: dict[str, Any], prefix: str) -> Any:
    try:
        built = klass(**yaml_numbers(klass, raw))
    except TypeError as exc:
        raise ConfigError(f"{prefix}: {exc}") from exc
    check_types(built, prefix.rstrip("."), ConfigError)
    return built


def _data_config(raw: dict[str, Any]) -> DataConfig:
    if not isinstance(raw, dict):
        raise ConfigError("data: must be a mapping")
    _reject_unknown(raw, DataConfig, "data.")
    kwargs = dict(raw)
    if "seq_len_schedule" in kwargs:
        phases = []
        for i, p in enumerate(kwargs["seq_len_schedule"] or []):
            if not isinstance(p, dict) or "seq_len" not in p:
                raise ConfigError(f"data.seq_len_schedule[{i}] needs a seq_len")
            _reject_unknown(p, SeqLenPhase, f"data.seq_len_schedule[{i}].")
            phases.append(SeqLenPhase(int(p["seq_len"]), p.get("until_step")))
        kwargs["seq_len_schedule"] = tuple(phases)
    if "streams" in kwargs:
        streams = []
        for i, s in enumerate(kwargs["streams"] or []):
            if not isinstance(s, dict) or "name" not in s or "weight" not in s:
                raise ConfigError(f"data.streams[{i}] needs a name and a weight")
            _reject_unknown(s, StreamSpec, f"data.streams[{i}].")
            streams.append(StreamSpec(str(s["name"]), float(s["weight"]), dict(s.get("match", {}))))
        kwargs["streams"] = tuple(streams)
    built: DataConfig = _build(DataConfig, kwargs, "data.")
    return built
