"""Tokenizers and the encoded splits.

Mainrun: byte-level BPE, special tokens <pad> <eos> <unk>, trained on train+val titles, and each split encoded
as "<eos>".join(titles) + "<eos>". We encode title by title with the library's batch encoder and put the
<eos> id between them, which gives the same ids (special tokens split the text before pre-tokenization).
"""
import hashlib
import json
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from .common import TOKENIZER_KINDS, check_tokenizer_corpus
from .data import split_stats

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
SPECIAL_TOKENS = [PAD, EOS, UNK]
# the write-up's whitelisted domain tokens; params.yaml alt_tokenizers.bpe_whitelist.extra adds more
WHITELIST = ["http", "://", ".com", "C++", "API", "GPU", "GPT-4"]
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


def train_tokenizer(titles: list[str], vocab_size: int, kind: str = "bpe", whitelist=()) -> Tokenizer:
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"unknown tokenizer kind {kind!r}; choose one of {', '.join(TOKENIZER_KINDS)}")
    if kind == "unigram":
        return _train_unigram(titles, vocab_size)
    extra = list(dict.fromkeys([*WHITELIST, *whitelist])) if kind == "bpe_whitelist" else []
    tk = Tokenizer(models.BPE(unk_token=UNK))
    # Mainrun's ByteLevel() prepends a space to every piece; with whitelisted tokens splitting the text that would
    # invent a space after each of them, so the whitelist variant keeps the text exactly as written
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=not extra)
    tk.decoder = decoders.ByteLevel()
    # the whitelist counts against the vocabulary, so every kind ends at the same size
    # show_progress=False: without a terminal the progress bar prints only blank lines
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(extra), special_tokens=SPECIAL_TOKENS,
                                  show_progress=False)
    tk.train_from_iterator(titles, trainer)
    if extra:
        tk.add_tokens([AddedToken(t, normalized=False) for t in extra])
    return tk


def _train_unigram(titles: list[str], vocab_size: int) -> Tokenizer:
    """Unigram with NFKC normalisation and byte fallback: no title is ever <unk>."""
    tk = Tokenizer(models.Unigram())
    tk.normalizer = normalizers.NFKC()
    tk.pre_tokenizer = pre_tokenizers.Metaspace()
    # Llama-style decoding: ▁ back to spaces, byte pieces back to UTF-8, drop the space Metaspace prepended
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                    decoders.Strip(" ", 1, 0)])
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size - len(BYTE_TOKENS), special_tokens=SPECIAL_TOKENS,
                                      unk_token=UNK, show_progress=False)
    tk.train_from_iterator(titles, trainer)
    # append the 256 byte pieces at the lowest score, then switch byte fallback on
    spec = json.loads(tk.to_str())
    pieces = spec["model"]["vocab"]
    floor = min(score for _, score in pieces) - 1.0
    pieces += [[b, floor] for b in BYTE_TOKENS]
    spec["model"]["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(spec))


def encode_titles(tk: Tokenizer, titles: list[str]) -> np.ndarray:
    """Ids of "<eos>".join(titles) + "<eos>", through the batch encoder."""
    eos = tk.token_to_id(EOS)
    encodings = tk.encode_batch(titles, add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) + 1 for e in encodings), dtype=np.int64, count=len(encodings))
    ids = np.empty(int(lengths.sum()), dtype=np.uint32)
    pos = 0
    for e, n in zip(encodings, lengths):
        ids[pos:pos + n - 1] = e.ids
        ids[pos + n - 1] = eos
        pos += n
    return ids.astype(np.uint16) if tk.get_vocab_size() <= 1 << 16 else ids


def build(train_titles, val_titles, vocab_size: int, out_dir, kind="bpe", corpus="train+val", whitelist=()) -> dict:
    """Train a tokenizer, encode both splits, write tokenizer.json, train.npy, val.npy, meta.json."""
    check_tokenizer_corpus(corpus)
    tk = train_tokenizer(train_titles + (val_titles if corpus == "train+val" else []), vocab_size, kind, whitelist)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tk.save(str(out / "tokenizer.json"))
    digest = hashlib.sha256((out / "tokenizer.json").read_bytes())
    meta = {"kind": kind, "vocab_size_requested": vocab_size, "vocab_size": tk.get_vocab_size(), "corpus": corpus}
    for split, titles in (("train", train_titles), ("val", val_titles)):
        ids = encode_titles(tk, titles)
        np.save(out / f"{split}.npy", ids)
        digest.update(ids.tobytes())
        stats = split_stats(titles)
        chars = stats["characters"] + len(EOS) * len(titles)  # len("<eos>".join(titles) + "<eos>")
        meta[split] = {"tokens": int(len(ids)), "characters": chars, "bytes": stats["bytes"],
                       "characters_per_token": round(chars / len(ids), 4)}
    meta["fingerprint"] = digest.hexdigest()[:16]
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta
