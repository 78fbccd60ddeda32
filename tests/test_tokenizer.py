import numpy as np
import pytest

from mainrun.synthetic import synthetic_titles
from mainrun.tokenized import load_ids
from mainrun.tokenizer import EOS, SPECIAL_TOKENS, WHITELIST, build, encode_titles, train_tokenizer

TITLES = synthetic_titles(800, 3) + ["Show HN: 東京 café 🚀 – naïve Zürich", "Москва: GPT-4 vs. C++ (2023) [pdf]"]


@pytest.fixture(scope="module")
def bpe():
    return train_tokenizer(TITLES, 400)


def test_mainrun_bpe_layout(bpe):
    assert [bpe.id_to_token(i) for i in range(3)] == SPECIAL_TOKENS
    assert bpe.get_vocab_size() == 400


def test_batch_encoding_equals_mainrun_joined_encoding(bpe):
    joined = EOS.join(TITLES) + EOS  # what Mainrun encodes in one call
    assert encode_titles(bpe, TITLES).tolist() == bpe.encode(joined).ids


def test_build_is_byte_identical_for_the_same_input(tmp_path):
    for d in ("a", "b"):
        build(TITLES[:700], TITLES[700:], 400, tmp_path / d)
    for f in ("tokenizer.json", "train.npy", "val.npy", "meta.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()


def test_meta_counts(tmp_path):
    meta = build(TITLES[:700], TITLES[700:], 400, tmp_path)
    val = TITLES[700:]
    assert meta["val"]["characters"] == len(EOS.join(val) + EOS)
    assert meta["val"]["bytes"] == len("\n".join(val).encode()) + 1
    assert meta["val"]["tokens"] == len(load_ids(tmp_path, "val"))
    assert load_ids(tmp_path, "train").dtype == np.uint16


def test_train_only_corpus_keeps_validation_unseen(tmp_path):
    a = build(TITLES[:700], TITLES[700:], 400, tmp_path / "a", corpus="train+val")
    b = build(TITLES[:700], TITLES[700:], 400, tmp_path / "b", corpus="train")
    assert a["fingerprint"] != b["fingerprint"] and b["corpus"] == "train"


def test_whitelisted_tokens_encode_to_single_ids():
    extra = ["Show HN", "JavaScript"]
    tk = train_tokenizer(TITLES, 400, kind="bpe_whitelist", whitelist=extra)
    assert tk.get_vocab_size() == 400
    for token in WHITELIST + extra:
        ids = tk.encode(f"x {token} y").ids
        assert tk.token_to_id(token) in ids, token
    assert tk.encode("C++").ids == [tk.token_to_id("C++")]
    for text in ["see https://foo.com GPUs", "Show HN: a C++ API for GPT-4 (2023)"]:
        assert tk.decode(tk.encode(text).ids) == text  # no invented spaces around whitelisted tokens


def test_unigram_round_trips_emoji_and_non_latin():
    tk = train_tokenizer(TITLES, 600, kind="unigram")
    assert tk.get_vocab_size() <= 600
    for text in ["Show HN: 東京 café 🚀 – naïve Zürich", "Москва: GPT-4 vs. C++ (2023) [pdf]", "Ελλάδα ☕ 🤖 ok"]:
        ids = tk.encode(text).ids
        assert tk.token_to_id("<unk>") not in ids
        assert tk.decode(ids) == text
