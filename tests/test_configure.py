import json

import pytest

from mainrun.attribution import headline_chain
from mainrun.config import ConfigError, RunConfig
from mainrun.configure import read_run_list, configure


def fake_tokenized(root, sizes=(8000, 16000, 32000), train_tokens=1_102_455, val_tokens=120_000):
    for v in sizes:
        d = root / f"bpe-{v}"
        d.mkdir(parents=True)
        (d / "meta.json").write_text(json.dumps({
            "vocab_size": v, "fingerprint": f"fp{v}", "train": {"tokens": train_tokens}, "val": {"tokens": val_tokens}}))
    return root


def config_bytes(params, tmp_path, name):
    out, tok = tmp_path / name, tmp_path / "tok"
    configure(params, tok if tok.exists() else fake_tokenized(tok), out, tmp_path / f"{name}.yaml")
    return {p.stem: p.read_bytes() for p in out.glob("*.json")}


def changed(params_a, params_b, tmp_path):
    a, b = config_bytes(params_a, tmp_path, "a"), config_bytes(params_b, tmp_path, "b")
    return {n for n in a if a[n] != b[n]}


def test_vocab_change_touches_rec2_onwards_only(params, tmp_path):
    import copy
    other = copy.deepcopy(params)
    other["vocab_size"] = 16000
    assert changed(params, other, tmp_path) == {"r2_vocab", "r3_block256", "r4_1_rmsnorm", "r4_2_rope", "r4_3_swiglu",
                                                 "r4_4_parallel", "r4_4_parallel-seed1338", "r4_4_parallel-seed1339"}


def test_earlier_delta_touches_it_and_everything_built_on_it(params, tmp_path):
    import copy
    other = copy.deepcopy(params)
    other["variants"]["r1_adamw"]["lr"] = 2e-3
    assert changed(params, other, tmp_path) == {
        *headline_chain(params)[1:],  # r1_adamw and every step after it
        "adamw_rmsnorm", "adamw_rope", "adamw_swiglu", "adamw_parallel",
        *(f"{v}-seed{s}" for v in ("r1_adamw", "r4_4_parallel") for s in (1338, 1339))}  # the noise repeats follow


def test_a_switched_off_study_has_no_run(params, tmp_path):
    trained = configure(params, fake_tokenized(tmp_path / "tok"), tmp_path / "cfg", tmp_path / "runs.yaml")
    assert "fail_unigram" not in trained and not (tmp_path / "cfg" / "fail_unigram.json").exists()
    assert read_run_list(tmp_path / "runs.yaml") == trained  # dvc.yaml makes a train stage for each, and no other
    baseline = json.loads((tmp_path / "cfg" / "baseline.json").read_text())
    assert baseline["enabled"] and baseline["data"]["fingerprint"] == "fp16000"
    assert RunConfig.from_dict(baseline).model.vocab_size == 16000 and "vocab_size" not in baseline["model"]  # a default


def test_alt_tokenizer_of_a_study_that_is_off(params, tmp_path):
    tok = fake_tokenized(tmp_path / "tok")
    (tok / "unigram").mkdir()  # an opt-in tokenizer's one folder
    (tok / "unigram" / "skipped.json").write_text("{}")
    params["variants"]["r4_4_parallel"]["tokenizer"] = "unigram"
    with pytest.raises(ConfigError, match="built only when studies.failed_attempts is true"):
        configure(params, tok, tmp_path / "cfg", tmp_path / "runs.yaml")


def test_seed_runs_are_configured(params, tmp_path):
    params["noise"]["seeds"] = [1338]
    configure(params, fake_tokenized(tmp_path / "tok"), tmp_path / "cfg", tmp_path / "runs.yaml")
    cfg = json.loads((tmp_path / "cfg" / "r1_adamw-seed1338.json").read_text())
    assert cfg["train"]["seed"] == 1338 and cfg["train"]["optimizer"] == "adamw"


@pytest.mark.parametrize("mutate, tok, message", [
    (lambda p: p["variants"]["r3_block256"].update(block_size=4096), {}, "262145"),
    (lambda p: None, {"val_tokens": 5000}, "legacy metric needs one full batch of 8193 validation tokens"),
    (lambda p: p["train"].update(evals_per_epoch=200), {}, "fewer than train.evals_per_epoch"),
    (lambda p: p["studies"].update(failed_attempts=True), {}, "tokenizer at vocab 32000, which was not built"),
    (lambda p: p.update(studies={"vocab_sweep": True, "failed_attempts": False}, vocab_sizes=[16000, 32000]), {},
     "vocab_size 8000, which is not in vocab_sizes"),
    (lambda p: p["noise"].update(seeds=[1338, 1337]), {}, r"noise.seeds: 1337 is the seed 'r1_adamw' already trains "
     r"with, so its repeat would measure no noise; list other seeds, e.g. \[1338, 1339\]"),
    (lambda p: (p["noise"].update(seeds=[7]), p["variants"]["r4_4_parallel"].update(seed=7)), {},
     "noise.seeds: 7 is the seed 'r4_4_parallel' already trains with"),
    (lambda p: p["variants"]["r1_adamw"].update(seed=-3), {}, r"seed must be between 0 and 2\*\*32 - 1, got -3"),
])
def test_configure_errors_name_the_fix(params, tmp_path, mutate, tok, message):
    mutate(params)
    with pytest.raises(ConfigError, match=message) as err:
        configure(params, fake_tokenized(tmp_path / "tok", **tok), tmp_path / "cfg", tmp_path / "runs.yaml")
    assert "\n" not in str(err.value)


def test_a_seed_repeat_row_has_a_variants_fields_and_follows_its_study(params, tmp_path):
    """A repeat of an opt-in study's variant trains only while that study is on; its runs.json row has every field
    a variant's row has (the report reads them by name)."""
    params["noise"]["variants"] = ["r1_adamw", "vocab_8k"]
    for on in (False, True):
        params["studies"]["vocab_sweep"] = on
        configure(params, fake_tokenized(tmp_path / f"tok{on}"), tmp_path / f"cfg{on}", tmp_path / f"runs{on}.yaml")
        rows = {r["name"]: r for r in json.loads((tmp_path / f"cfg{on}" / "runs.json").read_text())["runs"]}
        assert rows["vocab_8k-seed1338"]["enabled"] is on and rows["r1_adamw-seed1338"]["enabled"]
        assert set(rows["r1_adamw-seed1338"]) == set(rows["r1_adamw"])
        assert rows["vocab_8k-seed1338"]["group"] is None and rows["vocab_8k-seed1338"]["repeat_of"] == "vocab_8k"


def test_run_list_file_reads_back(tmp_path):
    from mainrun.configure import write_run_list
    path = tmp_path / "runs.yaml"
    write_run_list(["baseline", "null", "r1_adamw-lr0.5"], path)
    assert path.read_text() == (
        "# Written by the configure stage from params.yaml: the runs dvc.yaml makes a train stage for.\n"
        "# Do not edit; a run a switch adds trains in the same `dvc repro` (stage new_runs).\n"
        'runs: ["baseline", "null", "r1_adamw-lr0.5"]\n')
    assert read_run_list(path) == ["baseline", "null", "r1_adamw-lr0.5"]  # `null` stays a name
    path.write_text("runs:\n")
    assert read_run_list(path) == [] and read_run_list(tmp_path / "none.yaml") == []


def test_tokenized_folders():
    from pathlib import Path
    from mainrun.configure import tokenized_dir
    assert tokenized_dir("tok", "bpe", 8000) == Path("tok/bpe-8000")
    assert tokenized_dir("tok", "unigram", 8000) == tokenized_dir("tok", "unigram", 32000) == Path("tok/alt/unigram")


def test_cuda_visible_asks_torch_only_where_a_driver_is(monkeypatch):
    import sys
    import torch
    from mainrun import configure
    monkeypatch.setenv(configure.AUTO_DEVICE, "cuda")
    assert configure.cuda_visible()
    monkeypatch.setenv(configure.AUTO_DEVICE, "cpu")
    assert not configure.cuda_visible()
    monkeypatch.delenv(configure.AUTO_DEVICE)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for driver in (False, True):
        monkeypatch.setattr(configure, "gpu_driver", lambda: driver)
        assert configure.cuda_visible() is driver  # no driver: no GPU, whatever torch would say


def test_gpu_driver_is_rocm_or_libcuda(monkeypatch):
    from mainrun import configure

    def cdll(name):
        if name not in loadable:
            raise OSError(name)
    monkeypatch.setattr(configure.ctypes, "CDLL", cdll)
    for kfd, loadable, found in ((True, [], True), (False, ["libcuda.so.1"], True), (False, [], False)):
        monkeypatch.setattr(configure.os.path, "exists", lambda p: kfd and p == "/dev/kfd")
        assert configure.gpu_driver() is found


def test_check_runs_names_the_run_and_the_fix(params):
    from mainrun.configure import check_runs
    params["variants"]["r1_adamw"]["lr"] = 0
    with pytest.raises(ConfigError, match="^variant 'r1_adamw': lr must be positive, got 0$"):
        check_runs(params)
    params["variants"]["r1_adamw"]["lr"] = 1e-3
    params.update(vocab_sizes=[8000, 32000])
    with pytest.raises(ConfigError, match=r"^variant 'baseline' uses vocab_size 16000, which is not in vocab_sizes "
                                          r"\[8000, 32000\]: add it to vocab_sizes so the tokenize stage builds it$"):
        check_runs(params)
    params.update(vocab_sizes=[8000, 16000, 32000])
    params["studies"]["failed_attempts"] = True
    params["variants"]["fail_unigram"]["vocab_size"] = 12000  # not a BPE size: no BPE tokenizer to build
    check_runs(params)


def test_configure_resolves_auto_for_the_device_it_sees(params, tmp_path, monkeypatch):
    from mainrun.configure import AUTO_DEVICE
    tok = fake_tokenized(tmp_path / "tok")
    monkeypatch.setenv(AUTO_DEVICE, "cuda")
    configure(params, tok, tmp_path / "seen", tmp_path / "seen.yaml")  # cuda=None: it asks cuda_visible
    configure(params, tok, tmp_path / "told", tmp_path / "told.yaml", cuda=False)
    seen, told = (json.loads((tmp_path / d / "baseline.json").read_text())["train"] for d in ("seen", "told"))
    assert (seen["device"], seen["bf16"], seen["tf32"], seen["fused_adamw"]) == ("cuda", True, True, True)
    assert (told["device"], told["bf16"], told["tf32"], told["fused_adamw"]) == ("cpu", False, False, False)


def test_configure_makes_its_folder_and_runs_again_over_it(params, tmp_path):
    tok, out = fake_tokenized(tmp_path / "tok"), tmp_path / "data" / "configs"  # data/ is not there yet
    def run():
        on = configure(params, tok, out, tmp_path / "runs.yaml", cuda=False)
        return on, *(json.loads((out / f"{f}.json").read_text()) for f in ("new_runs", "runs"))
    first, new, index = run()
    assert new == {"runs": first} and "lr_cap" not in index and index["runs"][0]["name"] == "baseline"
    params["studies"].update(vocab_sweep=True, lr_sweep=True)
    params["lr_sweep"].update(factors=[2], extend={"cap": 8})
    on, new, index = run()
    assert set(on) == set(first) | set(new["runs"]) and "vocab_8k" in new["runs"] and not set(first) & set(new["runs"])
    assert index["lr_cap"] == 8 and set(on) < {r["name"] for r in index["runs"]}  # and the rows of runs that are off
    params["studies"].update(vocab_sweep=False, lr_sweep=False)
    assert run()[:2] == (first, {"runs": []})
    assert json.loads((out / "vocab_8k.json").read_text()) == {"name": "vocab_8k", "enabled": False}  # a marker
    assert json.loads((out / "baseline.json").read_text())["enabled"]


FIX = "lower block_size or train.batch_size, or raise data.num_titles"


@pytest.mark.parametrize("mutate, tok, message", [
    (lambda p: p["variants"]["r1_adamw"].update(lr=0), {}, "variant 'r1_adamw': lr must be positive, got 0"),
    (lambda p: p.update(studies={**p["studies"], "vocab_sweep": True}, vocab_sizes=[16000, 32000]), {},
     r"variant 'vocab_8k' uses vocab_size 8000, which is not in vocab_sizes \[16000, 32000\]: add it to vocab_sizes "
     "so the tokenize stage builds it"),
    (lambda p: (p["studies"].update(failed_attempts=True),
                p["variants"]["fail_domain_tokens"].update(vocab_size=16000)), {},
     "variant 'fail_domain_tokens': the bpe_whitelist tokenizer is built at vocab_size 32000 only, not 16000"),
    (lambda p: p["variants"]["r4_4_parallel"].update(tokenizer="unigram"), {}, "variant 'r4_4_parallel' needs the "
     "unigram tokenizer, which is built only when studies.failed_attempts is true: switch it on or give "
     "'r4_4_parallel' that study"),
    (lambda p: p["studies"].update(failed_attempts=True), {}, r"variant 'fail_domain_tokens' needs the bpe_whitelist "
     r"tokenizer at vocab 32000, which was not built \(.*/tok/alt/bpe_whitelist\); run `dvc repro` so the tokenize "
     "stages build it"),
    (lambda p: None, {"train_tokens": 8193}, r"variant 'baseline': one batch needs 8193 tokens \(block_size 128 x "
     rf"batch_size 64 \+ 1\) but the train split has 8193; {FIX}"),
    (lambda p: None, {"val_tokens": 8192}, "variant 'baseline': the legacy metric needs one full batch of 8193 "
     f"validation tokens but the validation split has 8192; {FIX}"),
    (lambda p: None, {"train_tokens": 3 * 8192 - 1}, "variant 'baseline': 2 batches per epoch is fewer than "
     f"train.evals_per_epoch 3; lower evals_per_epoch or {FIX}"),
])
def test_resolve_errors_read_in_full(params, tmp_path, mutate, tok, message):
    mutate(params)
    with pytest.raises(ConfigError, match=f"^{message}$"):
        configure(params, fake_tokenized(tmp_path / "tok", **tok), tmp_path / "cfg", tmp_path / "runs.yaml", cuda=False)


def test_just_enough_tokens_and_the_data_a_run_records(params, tmp_path):
    """r3_block256's batch is 256 x 64 + 1 tokens: a validation split of one batch, and a train split of exactly
    evals_per_epoch batches, are enough."""
    tok = fake_tokenized(tmp_path / "tok", train_tokens=3 * 256 * 64, val_tokens=256 * 64 + 1)
    meta = json.loads((tok / "bpe-16000" / "meta.json").read_text())
    (tok / "bpe-16000" / "meta.json").write_text(json.dumps({**meta, "vocab_size": 15000}))  # the size it reached
    configure(params, tok, tmp_path / "cfg", tmp_path / "runs.yaml", cuda=False)
    baseline = json.loads((tmp_path / "cfg" / "baseline.json").read_text())
    assert baseline["data"] == {"dir": str(tok / "bpe-16000"), "fingerprint": "fp16000", "vocab_size": 15000,
                                "train_tokens": 3 * 256 * 64, "val_tokens": 256 * 64 + 1}
    assert baseline["model"]["vocab_size"] == 15000 and baseline["study"] is None


def test_variant_rows_number_their_chains(params):
    """A chain is a group: the headline chain, then each `from:` starts the next."""
    from mainrun.configure import run_index
    rows = {r["name"]: r for r in run_index(params)}
    assert [rows[v]["group"] for v in params["variants"]] == [0] * 8 + [1] * 4 + [2] * 4 + [3, 4, 5, 6, 7]
    for taken in ("runs", "new_runs"):
        with pytest.raises(ConfigError, match=f"^a variant may not be called '{taken}': configs/{taken}.json is the "
                                              "configure stage's$"):
            run_index({**params, "variants": {**params["variants"], taken: {}}})
