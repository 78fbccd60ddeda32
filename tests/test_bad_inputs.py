"""Bad input gets one clear line naming the fix (issue 12): params, sources and sizes a demanding user hits."""
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from conftest import ROOT, committed_params
from mainrun import data
from mainrun.config import DELTA_KEYS, ConfigError
from mainrun.data import MAX_TITLE_CHARS, DataError, load_titles
from mainrun.params import SECTIONS, UNDO, check_params


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.update(vocab_szie=16000), "unknown top-level key 'vocab_szie'"),
    (lambda p: p.update(learning_rate=1), "unknown top-level key 'learning_rate'"),
    (lambda p: p["variants"].update({"my variant": {}}),
     r"variant name 'my variant' may hold only letters, digits, '_' and '-' .*rename it, e.g. 'my_variant'"),
    (lambda p: p["variants"].update({"a/b": {}}), "variant name 'a/b' may hold only"),
    (lambda p: p["variants"].update({"../../x": {}}), "variant name '../../x' may hold only"),
    (lambda p: p["variants"].update({"/abs/path": {}}), "variant name '/abs/path' may hold only"),
    (lambda p: p["variants"].update({7: {}}), "variant name 7 may hold only"),
    (lambda p: p["noise"].update(variants=["r1_adamw", "nope"]), "noise.variants: 'nope' is not a variant"),
    (lambda p: p["noise"].update(variants=["r1_adamw", "r1_adamw"]), "noise.variants lists 'r1_adamw' twice"),
    (lambda p: p["noise"].update(seeds=[1338, 1338]), "noise.seeds lists 1338 twice"),
    (lambda p: (p["noise"].update(seeds=[7]), p["variants"].update({"r1_adamw-seed7": {}})),
     "variant name 'r1_adamw-seed7' is also the name of 'r1_adamw' at noise seed 7"),
    (lambda p: p.update(vocab_sizes=[500, 1000, 2000, 2000], vocab_size=2000), "vocab_sizes lists 2000 twice"),
    (lambda p: p.update(vocab_sizes=[0, 32000]), "vocab_sizes: 0 is not a vocabulary size"),
    (lambda p: p.update(vocab_sizes=[-8000, 32000]), "vocab_sizes: -8000 is not a vocabulary size"),
    (lambda p: p["data"].pop("source"), "missing key 'data.source'"),
    (lambda p: p["noise"].pop("seeds"), "missing key 'noise.seeds'"),
    (lambda p: p.update(seed=-1), r"seed must be between 0 and 2\*\*32 - 1, got -1"),
    (lambda p: p["noise"].update(seeds=[1338, 2**32]), r"noise.seeds\[1\] must be between 0 and 2\*\*32 - 1"),
])
def test_bad_params_fail_with_one_line(params, mutate, message):
    mutate(params)
    with pytest.raises(ConfigError, match=message) as err:
        check_params(params)
    assert "\n" not in str(err.value)


def test_committed_params_and_cpu_profile_pass(params):
    check_params(params)
    params.update(vocab_sizes=[500, 1000, 2000], vocab_size=2000)
    params["noise"]["seeds"] = [1338, 1339]
    check_params(params)


def write_csv(path, titles, **columns):
    pd.DataFrame({**columns, "title": titles}).to_csv(path, index=False)


@pytest.mark.parametrize("name, make, message", [
    ("latin1.csv", lambda p: p.write_bytes("title\nCafé à Zürich\nnaïve\nélan\n".encode("latin-1")),
     r"'.*latin1.csv' is not UTF-8 \(line 2 is the first that is not\); convert it, "
     r"e.g. from Latin-1: iconv -f latin1 -t utf-8 '.*latin1.csv' > '.*latin1-utf8.csv'"),
    ("utf16.csv", lambda p: p.write_text("title\nalpha\nbeta\ngamma\n", encoding="utf-16"), "is not UTF-8 .line 1"),
    ("latin1.txt", lambda p: p.write_bytes("a\nb\nc\nd\n\xe9t\xe9\n".encode("latin-1")), "is not UTF-8 .line 5"),
    ("empty.csv", lambda p: p.write_text(""), r"'.*empty.csv' is empty; point data.source at a file of titles"),
    ("empty.txt", lambda p: p.write_text(""), "empty.txt' is empty"),
    ("blank.csv", lambda p: p.write_text("\n  \n\n"), "blank.csv' holds no rows"),
    ("header.csv", lambda p: p.write_text("id,title\n"), "header.csv' holds no rows"),
    ("ragged.csv", lambda p: p.write_text("id,title\n1,a\n2,b,c,d\n3,e\n"),
     r"ragged.csv' is not a readable csv file \(.*Expected 2 fields in line 3, saw 4\); fix or re-export it"),
    ("long.csv", lambda p: write_csv(p, ["a b", "x" * 5_000_000, "c d"], id=[10, 11, 12]),
     rf"the title at row 2 \(id 11\) of .*long.csv is 5000000 characters long; a title is one line of text of "
     rf"at most {MAX_TITLE_CHARS} characters .*: fix or drop that row"),
    ("long.txt", lambda p: p.write_text("a\nb\n" + "y " * 3000 + "\n"), "title at row 3 of .*long.txt is 5999"),
    ("blank_lines.txt", lambda p: p.write_text("one\n\ntwo\n"),
     "1 of the 3 selected titles are empty after strip.., the first at row 2 of .*blank_lines.txt"),
    ("no_title.jsonl", lambda p: p.write_text('{"name": "a"}\n' * 3), "has no 'title' column .columns: name."),
    ("numbers.jsonl", lambda p: p.write_text('{"title": 1}\n{"title": 2}\n{"title": 3}\n'),
     "column 'title' holds int64 values, not text; store the titles as strings"),
    ("mixed.jsonl", lambda p: p.write_text('{"title": "a"}\n{"title": 2}\n{"title": "c"}\n'),
     "column 'title' holds .* values, not text"),
    ("broken.jsonl", lambda p: p.write_text('{"title": "a"}\n{"title": \n{"title": "c"}\n'),
     "broken.jsonl' is not a readable json file"),
    ("ints.parquet", lambda p: pd.DataFrame({"title": [1, 2, 3]}).to_parquet(p), "holds int64 values, not text"),
    ("nulls.parquet", lambda p: pd.DataFrame({"title": ["a", None, "c"]}).to_parquet(p),
     "1 of the 3 selected titles are empty after strip.., the first at row 2"),
    ("garbage.parquet", lambda p: p.write_bytes(b"not parquet\n"), "garbage.parquet' is not a readable parquet file"),
])
def test_bad_files_fail_with_one_line(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(DataError, match=message) as err:
        load_titles(str(path), 3, 1)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("titles", [["42", "7", "1000"], ["42", "007", "1e3", "-0.50", "1_000"], ["True", "1", "0"]])
def test_csv_titles_are_text_exactly_as_written(tmp_path, titles):
    (tmp_path / "t.csv").write_text("id,title\n" + "".join(f"{i},{t}\n" for i, t in enumerate(titles)))
    assert sorted(load_titles(str(tmp_path / "t.csv"), len(titles), 1)) == sorted(titles)


def test_byte_order_mark_is_not_part_of_the_first_title(tmp_path):
    for name, text in (("t.txt", "alpha\nbeta\n"), ("t.csv", "title\nalpha\nbeta\n")):
        (tmp_path / name).write_text(text, encoding="utf-8-sig")
        assert sorted(load_titles(str(tmp_path / name), 2, 1)) == ["alpha", "beta"]


def test_a_title_at_the_limit_is_kept(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a\n" + "z" * MAX_TITLE_CHARS + "\n")
    assert sorted(map(len, load_titles(str(path), 2, 1))) == [1, MAX_TITLE_CHARS]


def test_corpus_beyond_memory_is_refused_before_allocating(monkeypatch):
    with pytest.raises(DataError, match=r"data.num_titles=1000000000000 needs about .* GiB of memory to tokenize "
                                        r"\(2.6 kB per title\) but .* GiB is available; lower data.num_titles to at "
                                        r"most \d+$"):
        load_titles("synthetic", 10**12, 1)  # would take hours and terabytes if it allocated
    monkeypatch.setattr(data, "available_memory", lambda: 26_400_000)
    with pytest.raises(DataError, match="lower data.num_titles to at most 10000$"):
        load_titles("synthetic", 10_001, 1)
    assert len(load_titles("synthetic", 10_000, 1)) == 10_000


def test_file_corpus_beyond_memory_is_refused(tmp_path, monkeypatch):
    write_csv(tmp_path / "t.csv", ["x" * 100] * 20)  # 1000 + 40 * 100 bytes per title
    monkeypatch.setattr(data, "available_memory", lambda: 50_000)
    with pytest.raises(DataError, match=r"\(5.0 kB per title\).*at most 10$"):
        load_titles(str(tmp_path / "t.csv"), 11, 1)


def test_val_frac_one_and_too_few_titles(tmp_path):
    with pytest.raises(DataError, match="data.val_frac must be strictly between 0 and 1, got 1.0"):
        data.download("synthetic", 100, 1.0, 1, tmp_path)
    with pytest.raises(DataError, match="val_frac=0.6 of 2 titles leaves an empty split; raise data.num_titles"):
        data.download("synthetic", 2, 0.6, 1, tmp_path)


def stage(tmp_path, name, params, *args):
    """Run `python -m stages.NAME` in tmp_path with that params.yaml, as dvc would."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", f"stages.{name}", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True)


def test_stages_print_one_error_line_and_exit_1(tmp_path, params):
    (tmp_path / "t.csv").write_bytes("title\nCafé\n".encode("latin-1"))
    params["data"].update(source="t.csv", num_titles=2)
    p = stage(tmp_path, "download", params, "--out", "raw", "--stats", "s.json")
    assert (p.returncode, p.stderr.count("\n")) == (1, 1) and p.stderr.startswith("error: data.source file 't.csv' is not UTF-8")
    params["vocab_szie"] = 16000
    p = stage(tmp_path, "configure", params, "--tokenized", "tok", "--out", "configs", "--runs", "runs.yaml")
    assert (p.returncode, p.stderr) == (1, "error: params.yaml: unknown top-level key 'vocab_szie'; allowed: "
                                            "alt_tokenizers, attribution, data, lr_sweep, model, noise, scales, seed, studies, train, "
                                            f"variants, vocab_size, vocab_sizes ({UNDO})\n")



def test_a_train_stage_on_code_newer_than_its_digests_stops_with_one_line(tmp_path, params, tiny_run, monkeypatch):
    """DVC records a run under data/code/train.json as the code stage wrote it: a run whose modules changed since
    (an edit during a long `dvc repro`, or `dvc repro -s train@RUN` after an edit) must not train under it."""
    import json
    import shutil

    from mainrun.code import digests
    from stages.train import code_unchanged
    for folder in ("mainrun", "stages"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "code.json").write_text(json.dumps({"files": digests("stages.train", tmp_path)}))
    monkeypatch.chdir(tmp_path)
    code_unchanged("code.json")  # the same files: nothing to say
    with open(tmp_path / "mainrun" / "model.py", "a") as f:
        f.write("# an edit\n")
    (tmp_path / "run.json").write_text(json.dumps({**tiny_run.to_dict(), "enabled": True, "study": None}))
    p = stage(tmp_path, "train", params, "--config", "run.json", "--out", "out", "--live", "live", "--ckpt", "ckpt",
              "--metrics", "eval.json", "--code", "code.json")
    assert (p.returncode, p.stderr) == (1, "error: mainrun/model.py changed since the code stage wrote code.json: run "
                                           "dvc repro (it runs the code stage first; dvc repro -s train@RUN does not)\n")
    assert not (tmp_path / "out").exists()


def _keys(names) -> str:
    return ", ".join(sorted(names))


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p["lr_sweep"].update(factors=[-2]),
     r"lr_sweep.factors\[0\]: -2 is not a learning-rate factor; use positive numbers, e.g. \[0.25, 0.5, 2, 4\]"),
    (lambda p: p["lr_sweep"].update(factors=[2, 1]), r"lr_sweep.factors\[1\]: factor 1 is the swept run itself, always "
     r"in the sweep and never trained twice; leave it out"),
    (lambda p: p["lr_sweep"].update(extend={"cap": "4"}),
     r"lr_sweep.extend.cap must be of type float, got '4' \(quoted, so it is text: write the number without quotes\)"),
    (lambda p: p["lr_sweep"].update(extra={"r1_adamw": 8}), "lr_sweep.extra.r1_adamw must be of type list, got 8"),
    (lambda p: p["lr_sweep"].update(extra={"r1_adamw": [4]}),
     "lr_sweep.extra.r1_adamw lists 4, which lr_sweep.factors has already; drop it from lr_sweep.extra"),
    (lambda p: p["attribution"].update(groups={"x-y": ["lr"]}), r"attribution.groups: the group name 'x-y' may hold "
     r"only letters, digits and '_' \(it names runs, <step>-alone-<part>\); rename it, e.g. 'x_y'"),
    (lambda p: p["attribution"].update(groups={"opt": "lr"}), "attribution.groups.opt must be of type list, got 'lr'"),
    (lambda p: p["attribution"].update(groups={"lr": ["optimizer", "weight_decay"]}), r"attribution.groups: the group "
     r"'lr' is named after a key it does not hold; name it after one of its keys \(optimizer, weight_decay\) or "
     r"another word"),
    (lambda p: p["attribution"].update(groups={"opt": ["optimiser"]}),
     "attribution.groups.opt: 'optimiser' is not a key a variant sets; choose from " + _keys(DELTA_KEYS)),
    (lambda p: p["noise"].update(variants=[7]), r"noise.variants\[0\] must be of type str, got 7"),
    (lambda p: p["noise"].update(variants=["nope"]),
     "noise.variants: 'nope' is not a variant; choose from " + ", ".join(committed_params()["variants"])),
    (lambda p: p["scales"]["sizes"]["small"].pop("n_head"),
     r"scales.sizes.small needs n_head \(each size sets n_layer, n_head, d_model\)"),
    (lambda p: p["scales"]["sizes"]["small"].update(n_head="8"),
     r"scales.sizes.small.n_head must be of type int, got '8' \(quoted"),
    (lambda p: p["scales"]["sizes"]["small"].update(n_layer=0), "scales.sizes.small.n_layer must be positive, got 0"),
    (lambda p: (p["variants"].update(seed1338={}), p["scales"].update(variants=["seed1338"], sizes={"r1_adamw": {
        "n_layer": 1, "n_head": 1, "d_model": 8}})), "variant name 'r1_adamw-seed1338' is also the name of 'seed1338' "
     "at size 'r1_adamw' of scales.sizes; rename the variant or the size"),
    (lambda p: p["scales"].update(variants=[7]), r"scales.variants\[0\] must be of type str, got 7"),
    (lambda p: p["scales"].update(variants=["baseline", "baseline"]),
     "scales.variants lists 'baseline' twice; list each once"),
    (lambda p: (p["scales"].update(variants=["gone"]), p["studies"].update(scale=True)),
     "scales.variants: 'gone' is not a variant; choose from " + ", ".join(committed_params()["variants"])
     + r", or write `chain` \(the headline chain\)"),
    (lambda p: p.update(vocab_sizes=["8000", 32000]), r"vocab_sizes\[0\] must be of type int, got '8000' \(quoted"),
    (lambda p: p["train"].update(epoch=3),
     "params.yaml: unknown key train.epoch; allowed: " + _keys(SECTIONS["train"])),
    (lambda p: p["variants"].update({"X y!": {}}), r"variant name 'X y!' may hold only .*rename it, e.g. 'X_y'"),
    (lambda p: p["variants"].update({"!!": {}}), r"variant name '!!' may hold only .*rename it, e.g. 'my_variant'"),
    (lambda p: p["alt_tokenizers"].update(wordpiece={"study": "failed_attempts"}),
     "params.yaml: unknown key alt_tokenizers.wordpiece; allowed: bpe_whitelist, unigram"),
    (lambda p: p["alt_tokenizers"].update(unigram="failed_attempts"),
     "params.yaml: alt_tokenizers.unigram must be a mapping, got 'failed_attempts'"),
    (lambda p: p["alt_tokenizers"]["bpe_whitelist"].update(extra=[7]),
     r"alt_tokenizers.bpe_whitelist.extra\[0\] must be of type str, got 7"),
    (lambda p: p.update(seed="1"), r"seed must be of type int, got '1' \(quoted"),
    (lambda p: p["variants"]["r1_adamw"].update(vocab_size="16000"),
     r"variants.r1_adamw.vocab_size must be of type int, got '16000' \(quoted"),
    (lambda p: p["variants"]["r1_adamw"].update(lr="@vocab_size"),
     "variants.r1_adamw.lr must be of type float, got '@vocab_size'"),
])
def test_params_errors_read_in_full(params, mutate, message):
    mutate(params)
    with pytest.raises(ConfigError, match=f"^{message}"):
        check_params(params)


def test_the_smallest_legal_sizes_and_cap_pass(params):
    params["scales"]["sizes"]["tiny"] = {"n_layer": 1, "n_head": 1, "d_model": 1}
    params["lr_sweep"]["extend"] = {"cap": 1.5}
    params.update(vocab_sizes=[1, 32000])
    check_params(params)


def test_load_params_reads_params_yaml_here(tmp_path, monkeypatch, params):
    from mainrun.params import load_params
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    assert load_params() == params
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**params, "extra": 1}, sort_keys=False))
    with pytest.raises(ConfigError, match="unknown top-level key 'extra'"):
        load_params()
