"""What every stage shares, the data stages included: the known errors, the YAML reader, and the tokenizer choices.

It imports nothing of the model or the run configs, so a model flag (an edit of config.py or model.py) changes no
digest of the download and tokenize stages (data/code/download.json, data/code/tokenize.json): they never re-run for it.
"""
from typing import Literal, get_args

# The one home of each list of choices; config.py, params.py, tokenizer.py, configure.py and the stages derive theirs.
TokenizerKind = Literal["bpe", "unigram", "bpe_whitelist"]
TOKENIZER_KINDS = get_args(TokenizerKind)
ALT_TOKENIZERS = tuple(k for k in TOKENIZER_KINDS if k != "bpe")  # built at vocab_size only, when their study is on
TokenizerCorpus = Literal["train+val", "train"]  # train+val is Mainrun's; train keeps the validation titles unseen
TOKENIZER_CORPORA = get_args(TokenizerCorpus)


class MainrunError(Exception):
    """A known failure whose message names the fix; stage scripts print it as one line."""


class Interrupted(MainrunError):
    """A stop (Ctrl-C, SIGTERM) ended a run between two steps, after saving its checkpoint."""


class ConfigError(MainrunError, ValueError):
    """Bad params: the message names the key and the fix."""


def tokenized_name(kind: str, vocab_size) -> str:
    """The folder of one tokenizer under data/tokenized (dvc.yaml's tokenize outs, checked by tests/test_dvc_yaml.py)."""
    return f"{kind}-{vocab_size}"


def read_yaml(path) -> dict:
    """A params or profile file, read as DVC reads params.yaml (ruamel.yaml, YAML 1.2): `lr: 1e-3` is a float and
    `yes` is text, for DVC and for every stage alike."""
    from ruamel.yaml import YAML
    with open(path, encoding="utf-8") as f:
        return YAML(typ="safe").load(f) or {}


def check_seed(path: str, seed: int) -> None:
    if not 0 <= seed < 2**32:  # what numpy, and so the datasets shuffle, accepts
        raise ConfigError(f"{path} must be between 0 and 2**32 - 1, got {seed}")


def check_tokenizer_corpus(corpus) -> None:
    if corpus not in TOKENIZER_CORPORA:
        raise ConfigError(f"data.tokenizer_corpus must be {' or '.join(map(repr, TOKENIZER_CORPORA))} "
                          f"('train+val' is Mainrun's), got {corpus!r}")


def check_vocab_size(params: dict) -> None:
    """The top-level vocab_size is one the tokenize stage builds (the opt-in tokenizers are built at it)."""
    if params["vocab_size"] not in params["vocab_sizes"]:
        raise ConfigError(f"vocab_size {params['vocab_size']} is not in vocab_sizes {params['vocab_sizes']}: "
                          f"add it to vocab_sizes so the tokenize stage builds it")
