"""Typed configuration: the model, the run, and params.yaml's cumulative variant chains.

Every default below is the Mainrun baseline, so `GPTConfig()` + `TrainConfig()` *is* Mainrun.
A variant in params.yaml is a delta on the variant above it (or on the one named by `from:`).
"""
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Literal, Union, get_args, get_origin

from .common import (ALT_TOKENIZERS, TOKENIZER_CORPORA, TOKENIZER_KINDS, ConfigError, Interrupted,  # noqa: F401
                     MainrunError, TokenizerCorpus, TokenizerKind, check_seed, check_tokenizer_corpus, read_yaml,
                     tokenized_name)  # the data stages' share, kept out of this file (mainrun/common.py)


# field metadata of the execution keys: where and how precisely a run computes. Part of a run's identity, but not a
# setting the report compares runs on.
EXECUTION = {"execution": True}
# field metadata of a model key that changes how the same function is computed, not the function: a part of a step
# that sets only such keys must come out inside noise (the attribution study flags it as a possible defect if not)
SAME_FUNCTION = {"same_function": True}


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 16000  # the model's real vocabulary: the size the trained tokenizer reached, as in Mainrun
    block_size: int = 128
    n_layer: int = 6
    n_head: int = 8
    d_model: int = 512
    dropout: float = 0.1
    norm: Literal["layernorm", "rmsnorm"] = "layernorm"  # in the blocks; the final norm stays LayerNorm
    pos: Literal["learned", "rope"] = "learned"
    # manual: explicit softmax and causal mask; sdpa: the same function, fused (SAME_FUNCTION: must change no result)
    attn: Literal["manual", "sdpa"] = field(default="manual", metadata=SAME_FUNCTION)
    attn_bias: bool = True
    mlp: Literal["gelu", "swiglu"] = "gelu"  # gelu: 4x hidden; swiglu: int(2.6667 * d_model)
    mlp_bias: bool = True
    parallel_residual: bool = False  # NeoX: x + attn(n1(x)) + mlp(n2(x))
    emb_scale: bool = False  # token embeddings times d_model ** -0.5

    def __post_init__(self):
        _check_types(self)
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.d_model % self.n_head:
            raise ConfigError(f"d_model {self.d_model} is not divisible by n_head {self.n_head}")
        if self.pos == "rope" and (self.d_model // self.n_head) % 2:
            raise ConfigError(f"rope needs an even head size, got d_model/n_head = {self.d_model // self.n_head}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class TrainConfig:
    tokenizer: TokenizerKind = "bpe"
    # the size asked of the tokenizer (params.yaml's `vocab_size`); the model gets the size it reached
    vocab_size_requested: int = field(default=16000, metadata={"param": "vocab_size"})
    batch_size: int = 64
    epochs: int = 7
    evals_per_epoch: int = 3
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 6e-3
    weight_decay: float = 0.0
    schedule: Literal["cosine", "warm_restarts"] = "cosine"  # cosine: CosineAnnealingLR over all steps
    restart_epochs: float = 1.0  # warm_restarts: first cycle length in epochs
    grad_clip: float = 1.0
    seed: int = 1337
    # How the numbers are computed: part of a run's identity. `auto` resolves per device (see resolved()).
    device: Literal["auto", "cpu", "cuda"] = field(default="auto", metadata=EXECUTION)  # auto: CUDA when present
    # bf16 autocast (cross-entropy stays fp32); auto: on CUDA only
    bf16: bool | Literal["auto"] = field(default="auto", metadata=EXECUTION)
    tf32: bool | Literal["auto"] = field(default="auto", metadata=EXECUTION)  # TF32 matmuls, CUDA only; auto: on CUDA
    fused_adamw: bool | Literal["auto"] = field(default="auto", metadata=EXECUTION)  # fused AdamW; auto: CUDA only
    compile: bool = field(default=False, metadata=EXECUTION)  # torch.compile

    def __post_init__(self):
        _check_types(self)
        for name in ("batch_size", "epochs", "evals_per_epoch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be positive, got {getattr(self, name)}")
        for name in ("lr", "grad_clip", "restart_epochs"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must not be negative, got {self.weight_decay}")
        check_seed("seed", self.seed)

    def resolved(self, cuda_available: bool) -> "TrainConfig":
        """Every `auto` made concrete: the CPU stays fp32 and bit-exact, CUDA gets bf16, TF32 and fused AdamW."""
        device = ("cuda" if cuda_available else "cpu") if self.device == "auto" else self.device
        auto = {k: device == "cuda" for k in EXECUTION_KEYS if getattr(self, k) == "auto" and k != "device"}
        return replace(self, device=device, **auto)


@dataclass(frozen=True)
class ExecConfig:
    """How a run executes, never what it computes: not part of a run's identity, so changing it re-trains nothing.
    The train stage reads these from params.yaml's train section at run time; which device slot, from the runner."""
    checkpoint_every_s: float = 300.0  # resume state is also saved at every evaluation
    log_every: int = 50  # steps between bringing the training losses to the host (and checking them)

    def __post_init__(self):
        _check_types(self)
        if self.checkpoint_every_s <= 0 or self.log_every < 1:
            raise ConfigError("train.checkpoint_every_s and train.log_every must be positive")


def exec_config(train_section: dict) -> ExecConfig:
    """The execution settings among params.yaml's train section."""
    return ExecConfig(**{k: v for k, v in train_section.items() if k in EXEC_CONFIG_KEYS})


def _matches(kind, value) -> bool:
    if get_origin(kind) is Literal:
        return any(value == a and type(value) is type(a) for a in get_args(kind))
    if get_origin(kind) is Union or type(kind).__name__ == "UnionType":
        return any(_matches(k, value) for k in get_args(kind))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return True  # an int may stand for a float
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _describe(kind) -> str:
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(map(str, get_args(kind)))
    if get_origin(kind) is Union or type(kind).__name__ == "UnionType":
        return " or ".join(_describe(k) for k in get_args(kind))
    return f"of type {kind.__name__}"


NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def check_value(path: str, kind, value) -> None:
    """value must be of type kind (an int may stand for a float, a bool never for a number), or one of a Literal's."""
    if _matches(kind, value):
        return
    if get_origin(kind) is Literal:
        raise ConfigError(f"{path} must be {_describe(kind)}; got {value!r}")
    hint = ""
    if kind in (int, float) and isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        hint = " (quoted, so it is text: write the number without quotes)"
    raise ConfigError(f"{path} must be {_describe(kind)}, got {value!r}{hint}")


def _check_types(cfg):
    for f in fields(cfg):
        check_value(f.name, f.type, getattr(cfg, f.name))


# params.yaml's keys for the config fields (a field's `param` metadata, else its name). Variant deltas use these.
TRAIN_PARAMS = {f.metadata.get("param", f.name): f.name for f in fields(TrainConfig)}  # params.yaml key -> field
MODEL_KEYS = {f.name for f in fields(GPTConfig)} - {"vocab_size"}  # the model's vocab_size comes from its tokenizer
TRAIN_KEYS = set(TRAIN_PARAMS)
DELTA_KEYS = MODEL_KEYS | TRAIN_KEYS
EXEC_CONFIG_KEYS = {f.name for f in fields(ExecConfig)}  # how a run executes (params.yaml's train section)
SAME_FUNCTION_KEYS = frozenset(f.name for f in fields(GPTConfig) if f.metadata.get("same_function"))
EXECUTION_KEYS = frozenset(f.name for f in fields(TrainConfig) if f.metadata.get("execution"))  # where, how precisely
FIELD_TYPES = {**{f.name: f.type for f in (*fields(GPTConfig), *fields(ExecConfig))},
               **{key: TrainConfig.__dataclass_fields__[name].type for key, name in TRAIN_PARAMS.items()}}


def base_delta(params: dict) -> dict:
    """The root of every chain: Mainrun's defaults with the project-wide sizes from params.yaml."""
    model = {k: v for k, v in asdict(GPTConfig()).items() if k in MODEL_KEYS}
    train = {key: getattr(TrainConfig(), name) for key, name in TRAIN_PARAMS.items()}
    shared = {k: v for k, v in params["train"].items() if k not in EXEC_CONFIG_KEYS}
    return {**model, **train, **params["model"], **shared, "seed": params["seed"]}


def resolve_variants(params: dict) -> dict[str, dict]:
    """Resolve the cumulative chains into one flat settings dict per variant (plus 'study')."""
    resolved: dict[str, dict] = {}
    for name, parent in variant_parents(params).items():
        delta = dict(params["variants"][name] or {})
        delta.pop("from", None)
        study = delta.pop("study", None)
        unknown = sorted(set(delta) - DELTA_KEYS)
        if unknown:
            raise ConfigError(f"variant '{name}': unknown key '{unknown[0]}'; allowed: {', '.join(sorted(DELTA_KEYS))}")
        if parent is not None and parent not in resolved:
            raise ConfigError(f"variant '{name}': from: '{parent}' is not a variant declared above it")
        if study is not None and study not in params["studies"]:
            raise ConfigError(f"variant '{name}': study '{study}' is not a key of studies: {list(params['studies'])}")
        settings = dict(resolved[parent]) if parent else base_delta(params)  # its "study" is set below
        for key, value in delta.items():
            settings[key] = params["vocab_size"] if value == "@vocab_size" else value
        if study is None and parent is not None:
            study = resolved[parent].get("study")
        settings["study"] = study
        resolved[name] = settings
    return resolved


def seed_run_name(variant: str, seed: int) -> str:
    return f"{variant}-seed{seed}"


def variant_parents(params: dict) -> dict[str, str | None]:
    """Each variant's parent: the one above it, or the one its `from:` names (None for the first)."""
    parents, previous = {}, None
    for name, delta in params["variants"].items():
        parents[name] = (delta or {}).get("from", previous)
        previous = name
    return parents


def is_enabled(settings: dict, params: dict) -> bool:
    study = settings.get("study")
    return study is None or bool(params["studies"][study])


def split_settings(settings: dict) -> tuple[GPTConfig, TrainConfig]:
    """Flat variant settings -> (GPTConfig without its final vocab size, TrainConfig)."""
    model = {k: v for k, v in settings.items() if k in MODEL_KEYS}
    train = {TRAIN_PARAMS[k]: v for k, v in settings.items() if k in TRAIN_KEYS}
    return GPTConfig(**model), TrainConfig(**train)


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs, resolved; written by the configure stage."""
    name: str
    model: GPTConfig
    train: TrainConfig
    data: dict = field(default_factory=dict)  # tokenized dir, its fingerprint and counts

    def to_dict(self) -> dict:
        """The run's identity (configs/<run>.json): only the settings away from the dataclass defaults, so a new key
        whose default keeps today's behaviour changes no run's file. The defaults themselves are code: config.py is
        in the train stage's digests, and mainrun.prove re-trains a run whose recorded settings a new default moved."""
        return {"name": self.name, "model": _set(self.model), "train": _set(self.train), "data": self.data}

    def full_dict(self) -> dict:
        """Every setting, defaults filled in: what a run records beside its weights (models/<run>/config.json)."""
        return {"name": self.name, "model": asdict(self.model), "train": asdict(self.train), "data": self.data}

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """From either form: the fields a file leaves out take today's defaults."""
        return cls(d["name"], GPTConfig(**d["model"]), TrainConfig(**d["train"]), d.get("data", {}))

    def digest(self) -> str:
        """The checkpoint's key: every value, defaults included, so a changed default never resumes an old run."""
        return hashlib.sha256(json.dumps(self.full_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _set(cfg) -> dict:
    """The fields of a config dataclass whose value is not the field's default."""
    return {f.name: getattr(cfg, f.name) for f in fields(cfg) if getattr(cfg, f.name) != f.default}
