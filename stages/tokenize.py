"""Stage tokenize: train one tokenizer (or every opt-in one whose study is on) and encode both splits."""
import argparse
from pathlib import Path

from stages._common import run_stage
from mainrun.common import TOKENIZER_KINDS, check_vocab_size, read_yaml, tokenized_name
from mainrun.data import read_split
from mainrun.runlog import write_json
from mainrun.tokenizer import build


def alt_on(path="params.yaml") -> list[str]:
    """The opt-in tokenizers whose study is on, read without the strict check (a malformed file: none)."""
    params = read_yaml(path)
    try:
        return [k for k, spec in params["alt_tokenizers"].items() if params["studies"][spec["study"]] is True]
    except (KeyError, TypeError, AttributeError):
        return []


def build_one(kind: str, vocab_size: int, raw: Path, out, params: dict) -> dict:
    alt = params["alt_tokenizers"].get(kind, {})
    meta = build(read_split(raw / "train.json"), read_split(raw / "val.json"), vocab_size, out,
                 kind=kind, corpus=params["data"]["tokenizer_corpus"], whitelist=alt.get("extra", ()))
    print(f"{tokenized_name(kind, vocab_size)}: vocab {meta['vocab_size']}, {meta['train']['tokens']} train tokens, "
          f"{meta['train']['characters_per_token']} characters/token")
    if meta["vocab_size"] < vocab_size:
        print(f"WARNING: {kind}-{vocab_size} stopped at {meta['vocab_size']:,} of the {vocab_size:,} tokens "
              "asked (the corpus has no more merges to learn): raise data.num_titles or lower vocab_sizes; the report "
              "flags every comparison this affects")
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kind", default="bpe", choices=(*TOKENIZER_KINDS, "alt"),
                    help="alt: every opt-in tokenizer whose study is on, at vocab_size, each in OUT/<kind>")
    ap.add_argument("--vocab-size", type=int, required=True)
    ap.add_argument("--raw", required=True, help="directory holding train.json and val.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--metrics", required=True)
    args = ap.parse_args()
    raw = Path(args.raw)
    if args.kind != "alt":
        write_json(args.metrics, build_one(args.kind, args.vocab_size, raw, args.out, read_yaml("params.yaml")))
        return
    on = alt_on()
    params = read_yaml("params.yaml")  # the check stage, upstream, judged the file (not params.py: it reads config.py)
    if on:
        check_vocab_size(params)  # what this stage builds at: said here too when the stage runs alone
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json(args.metrics, {k: build_one(k, args.vocab_size, raw, Path(args.out) / k, params) for k in on})
    write_json(Path(args.out) / "built.json", {"kinds": on})  # DVC keeps no empty folder
    if not on:
        print("no opt-in tokenizer is switched on")


if __name__ == "__main__":
    run_stage(main)
