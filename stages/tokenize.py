"""Stage tokenize: train one tokenizer and encode both splits."""
import argparse
from pathlib import Path

from stages._common import run_stage
from mainrun.config import TOKENIZER_KINDS, read_yaml, tokenized_name
from mainrun.params import load_params
from mainrun.data import read_split
from mainrun.runlog import write_json
from mainrun.tokenizer import build


def study_off(kind: str, path="params.yaml") -> str | None:
    """The study of an opt-in tokenizer when its switch is off. Read without the strict check: a stage that only
    writes a skip marker must not stop on a setting it does not use (configure checks the whole file after it)."""
    params = read_yaml(path)
    try:
        study = params["alt_tokenizers"][kind]["study"]
        return None if params["studies"][study] is True else study
    except (KeyError, TypeError):
        return None  # not an opt-in tokenizer, or a malformed file: the strict check names it


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kind", default="bpe", choices=TOKENIZER_KINDS)
    ap.add_argument("--vocab-size", type=int, required=True)
    ap.add_argument("--raw", required=True, help="directory holding train.json and val.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--metrics", required=True)
    args = ap.parse_args()
    study = study_off(args.kind)
    if study:  # an opt-in tokenizer whose study is off
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_json(Path(args.out) / "skipped.json", {"kind": args.kind, "reason": f"studies.{study} is off"})
        write_json(args.metrics, {"skipped": True})
        print(f"{args.kind}: skipped (studies.{study} is false)")
        return
    params = load_params()
    alt = params["alt_tokenizers"].get(args.kind, {})
    raw = Path(args.raw)
    meta = build(read_split(raw / "train.json"), read_split(raw / "val.json"), args.vocab_size, args.out,
                 kind=args.kind, corpus=params["data"]["tokenizer_corpus"], whitelist=alt.get("extra", ()))
    write_json(args.metrics, meta)
    print(f"{tokenized_name(args.kind, args.vocab_size)}: vocab {meta['vocab_size']}, {meta['train']['tokens']} train tokens, "
          f"{meta['train']['characters_per_token']} characters/token")
    if meta["vocab_size"] < args.vocab_size:
        print(f"WARNING: {args.kind}-{args.vocab_size} stopped at {meta['vocab_size']:,} of the {args.vocab_size:,} tokens "
              "asked (the corpus has no more merges to learn): raise data.num_titles or lower vocab_sizes; the report "
              "flags every comparison this affects")


if __name__ == "__main__":
    run_stage(main)
