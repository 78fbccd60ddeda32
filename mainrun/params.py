"""Strict parsing of params.yaml: an unknown key, a wrong type or a bad value fails with one line naming it."""
import yaml

from .config import DELTA_KEYS, EXEC_KEYS, FIELD_TYPES, TRAIN_KEYS, ConfigError, check_value

SECTIONS = {  # section -> the keys it may hold
    "data": {"source": str, "num_titles": int, "val_frac": float, "tokenizer_corpus": str},
    "model": {k: FIELD_TYPES[k] for k in ("n_layer", "n_head", "d_model", "dropout")},
    "train": {k: FIELD_TYPES[k] for k in sorted(EXEC_KEYS | TRAIN_KEYS - {"tokenizer", "vocab_size", "optimizer", "lr",
                                                                          "weight_decay", "schedule", "restart_epochs",
                                                                          "seed"})},
    "noise": {"variants": list, "seeds": list},
}
TOP_LEVEL = {"seed": int, "vocab_size": int, "vocab_sizes": list, **{k: dict for k in SECTIONS},
             "variants": dict, "studies": dict, "alt_tokenizers": dict}
ALT_TOKENIZERS = ("unigram", "bpe_whitelist")


def load_params(path="params.yaml") -> dict:
    with open(path) as f:
        params = yaml.safe_load(f) or {}
    check_params(params)
    return params


def _mapping(path: str, value, allowed) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"params.yaml: {path} must be a mapping, got {value!r}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        where = f"top-level key '{unknown[0]}'" if path is None else f"key {path}.{unknown[0]}"
        raise ConfigError(f"params.yaml: unknown {where}; allowed: {', '.join(sorted(allowed))}")
    return value


def _list_of(path: str, kind: type, value) -> None:
    for i, item in enumerate(value):
        check_value(f"{path}[{i}]", kind, item)


def check_params(params: dict) -> None:
    _mapping(None, params, TOP_LEVEL)
    for key, kind in TOP_LEVEL.items():
        if key not in params:
            raise ConfigError(f"params.yaml: missing key '{key}' (see the committed params.yaml)")
        check_value(key, kind, params[key])
    for section, keys in SECTIONS.items():
        for key, value in _mapping(section, params[section], keys).items():
            check_value(f"{section}.{key}", keys[key], value)
    _list_of("vocab_sizes", int, params["vocab_sizes"])
    _list_of("noise.variants", str, params["noise"]["variants"])
    _list_of("noise.seeds", int, params["noise"]["seeds"])
    if params["data"].get("tokenizer_corpus", "train+val") not in ("train+val", "train"):
        raise ConfigError(f"data.tokenizer_corpus must be 'train+val' (Mainrun) or 'train', "
                          f"got {params['data']['tokenizer_corpus']!r}")
    if params["vocab_size"] not in params["vocab_sizes"]:
        raise ConfigError(f"vocab_size {params['vocab_size']} is not in vocab_sizes {params['vocab_sizes']}: "
                          f"add it to vocab_sizes so the tokenize stage builds it")
    used_studies = set()
    for name, delta in params["variants"].items():
        for key, value in _mapping(f"variants.{name}", delta or {}, DELTA_KEYS | {"from", "study"}).items():
            if key == "study":
                used_studies.add(value)
            elif key != "from" and not (key == "vocab_size" and value == "@vocab_size"):
                check_value(f"variants.{name}.{key}", FIELD_TYPES[key], value)
    for kind, spec in _mapping("alt_tokenizers", params["alt_tokenizers"], ALT_TOKENIZERS).items():
        _mapping(f"alt_tokenizers.{kind}", spec, {"study", "extra"})
        if "study" not in spec:
            raise ConfigError(f"alt_tokenizers.{kind} needs `study:` (the study whose switch builds it)")
        used_studies.add(spec["study"])
        _list_of(f"alt_tokenizers.{kind}.extra", str, spec.get("extra", []))
    missing = sorted(used_studies - set(params["studies"]))
    if missing:
        raise ConfigError(f"study '{missing[0]}' is used in params.yaml but has no switch: add studies.{missing[0]}: false")
    for study, on in _mapping("studies", params["studies"], used_studies).items():
        check_value(f"studies.{study}", bool, on)
