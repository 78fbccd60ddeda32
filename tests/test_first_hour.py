"""What a newcomer meets in the first hour (issue 17): profiles applied twice, params read as DVC reads them, a
quick offline failure, quiet tokenize stages, a tokenize stage that is off not speaking for configure, offline plots."""
import http.server
import json
import os
import socket
import subprocess
import sys
import threading

import pytest
import yaml

from conftest import ROOT
from mainrun.config import ConfigError, read_yaml
from mainrun.params import UNDO, check_params, load_params
from mainrun.profile import apply, overrides
from waiting import run_to_end

PROFILE = ROOT / "profiles" / "cpu.yaml"


def profile_baseline() -> dict:
    """The baseline delta the CPU profile sets, read from the profile itself."""
    return {k.rsplit(".", 1)[1]: v for k, v in read_yaml(PROFILE).items() if k.lstrip("+").startswith("variants.baseline.")}


def write_params(path, params):
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_a_profile_applied_twice_is_applied_once(tmp_path, params):
    """`make demo; make demo`: the second application meets keys the first one added (`+key` failed there)."""
    path = write_params(tmp_path / "params.yaml", params)
    apply(PROFILE, path)
    once = path.read_text()
    apply(PROFILE, path)
    assert path.read_text() == once
    applied = read_yaml(path)
    check_params(applied)
    profile = read_yaml(PROFILE)
    assert applied["variants"]["baseline"] == profile_baseline() != {}
    assert (applied["vocab_sizes"], applied["data"]["source"], applied["model"]["d_model"]) == (
        profile["vocab_sizes"], profile["data.source"], profile["model.d_model"])


def test_printed_overrides_work_with_and_without_the_key(tmp_path, params):
    """What `$(python -m mainrun.profile FILE)` gives dvc exp run / mainrun.parallel, one override at a time: each
    sets its key on params that lack it and on params that already hold it (the second pass)."""
    from dvc.utils.hydra import apply_overrides
    printed = subprocess.run([sys.executable, "-m", "mainrun.profile", str(PROFILE)], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert printed[::2] == ["-S"] * len(read_yaml(PROFILE))
    params["variants"]["baseline"] = {}
    path = write_params(tmp_path / "params.yaml", params)
    for _ in range(2):
        for override in printed[1::2]:
            apply_overrides(path, [override])
    assert read_yaml(path)["variants"]["baseline"] == profile_baseline() != {}


def test_old_plus_keys_still_apply(tmp_path, params):
    profile = tmp_path / "p.yaml"
    profile.write_text("+variants.baseline.block_size: 48\nvocab_size: 16000\n")
    assert overrides(read_yaml(profile)) == ["++variants.baseline.block_size=48", "++vocab_size=16000"]
    params["variants"]["baseline"] = {}
    path = write_params(tmp_path / "params.yaml", params)
    apply(profile, path)
    apply(profile, path)
    assert read_yaml(path)["variants"]["baseline"] == {"block_size": 48}


TRICKY = """lr: 1e-3
big: 1_000
flag: yes
octal: 010
time: 1:30
plain: 1.0e-3
"""


def test_params_are_read_as_dvc_reads_them(tmp_path, params):
    """YAML 1.2, as DVC's own params reader: `1e-3` is a float, `yes` and `1:30` are text."""
    from dvc.utils.serialize import load_yaml
    (tmp_path / "t.yaml").write_text(TRICKY)
    ours = read_yaml(tmp_path / "t.yaml")
    assert ours == load_yaml(tmp_path / "t.yaml")
    assert (ours["lr"], ours["flag"], ours["time"]) == (0.001, "yes", "1:30")
    text = yaml.safe_dump(params, sort_keys=False).replace("lr: 0.001", "lr: 1e-3")
    assert "lr: 1e-3" in text
    (tmp_path / "params.yaml").write_text(text)
    assert load_params(tmp_path / "params.yaml")["variants"]["r1_adamw"]["lr"] == 0.001


def test_a_quoted_number_names_the_quotes(params):
    params["variants"]["r1_adamw"]["lr"] = "1e-3"
    with pytest.raises(ConfigError, match=r"lr must be of type float, got '1e-3' \(quoted, so it is text"):
        check_params(params)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_offline(port: int) -> tuple[int, str]:
    """(connection attempts to the hub, error) of loading a hub dataset in a fresh process whose hub endpoint is a
    port on loopback and with no offline variable set: what a user without network meets. The attempts are counted
    by an audit hook, so the test waits on the process's end, not on a clock."""
    code = ("import sys; port, attempts = int(sys.argv[1]), []\n"
            "sys.addaudithook(lambda event, args: event == 'socket.connect' and isinstance(args[1], tuple)\n"
            "                 and args[1][1] == port and attempts.append(args[1]))\n"
            "import datasets; from mainrun.data import load_titles  # offline mode reaches a loaded datasets\n"
            "try:\n    load_titles('hf:julien040/hacker-news-posts', 10, 1)\n"
            "except Exception as e:\n    print(len(attempts), e, file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_DISABLE_TELEMETRY="1", PYTHONPATH=str(ROOT))
    p = run_to_end([sys.executable, "-c", code, str(port)], "the failed hub load's exit", env=env)
    attempts, _, message = p.stderr.strip().splitlines()[-1].partition(" ")
    return int(attempts), message


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_offline_hub_fails_in_seconds_with_one_line(kind):
    """No network: one probe of the hub (2 s at most), then the hub client's offline mode, not its retries (7
    connection attempts, ~25 s). Refused: nothing listens on the port; silent: a server accepts and never answers."""
    server = socket.socket()
    if kind == "silent":
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
    else:
        port = free_port()
    try:
        attempts, message = load_offline(port)
    finally:
        server.close()
    assert message.startswith("cannot load 'julien040/hacker-news-posts' from the Hugging Face hub (ConnectionError); "
                              "offline, set data.source to a local")
    assert attempts == 1, f"{attempts} connections to the hub: retries, not one probe and then offline mode"


def test_the_probe_counts_any_http_answer():
    from mainrun.data import hub_reachable

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert hub_reachable(f"http://127.0.0.1:{server.server_address[1]}", timeout=60)  # busy machines too
    finally:
        server.shutdown()
    assert not hub_reachable(f"http://127.0.0.1:{free_port()}")


def test_building_a_tokenizer_prints_nothing(tmp_path, capfd):
    """The tokenizers trainer's progress bar printed three blank lines per tokenize stage."""
    from mainrun.synthetic import synthetic_titles
    from mainrun.tokenizer import build
    titles = synthetic_titles(200, seed=3)
    build(titles[:180], titles[180:], 280, tmp_path / "bpe")
    build(titles[:180], titles[180:], 500, tmp_path / "unigram", kind="unigram")
    assert capfd.readouterr() == ("", "")


def stage(tmp_path, name, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", f"stages.{name}", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True)


def test_a_vocab_size_error_comes_from_configure_not_from_a_study_that_is_off(tmp_path, params):
    """`-S vocab_size=16000` on the CPU profile: the opt-in tokenizer stage (its study off) builds nothing;
    configure, which resolves the variants at vocab_size, names the problem."""
    params.update(vocab_sizes=[500, 1000, 2000], vocab_size=16000)
    write_params(tmp_path / "params.yaml", params)
    p = stage(tmp_path, "tokenize", "--kind", "alt", "--vocab-size", "16000", "--raw", "raw",
              "--out", "tok/alt", "--metrics", "m.json")
    assert (p.returncode, p.stdout) == (0, "no opt-in tokenizer is switched on\n"), p.stderr
    assert json.loads((tmp_path / "m.json").read_text()) == {}
    p = stage(tmp_path, "configure", "--tokenized", "tok", "--out", "configs", "--runs", "runs.yaml")
    assert (p.returncode, p.stderr) == (1, "error: vocab_size 16000 is not in vocab_sizes [500, 1000, 2000]: add it "
                                           f"to vocab_sizes so the tokenize stage builds it ({UNDO})\n")
    params["studies"]["failed_attempts"] = True  # switched on, the study's stage is concerned, and says so
    write_params(tmp_path / "params.yaml", params)
    p = stage(tmp_path, "tokenize", "--kind", "alt", "--vocab-size", "16000", "--raw", "raw",
              "--out", "tok/alt", "--metrics", "m.json")
    assert p.returncode == 1 and "vocab_size 16000 is not in vocab_sizes" in p.stderr


@pytest.mark.slow
def test_plots_html_carries_its_javascript(tmp_path):
    """`dvc plots show` with the generated template: vega-embed inline, nothing loaded from a CDN."""
    from mainrun.plots_template import DEFAULT
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DVC_NO_ANALYTICS": "1"}
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True)
    (tmp_path / "loss.tsv").write_text("step\tloss\n0\t2.5\n1\t2.0\n2\t1.7\n")
    (tmp_path / "dvc.yaml").write_text("plots:\n- loss.tsv:\n    x: step\n    y: loss\n")
    p = subprocess.run([sys.executable, "-m", "mainrun.plots_template"], cwd=tmp_path, env=env, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / DEFAULT).is_file()
    setting = subprocess.run(["dvc", "config", "--local", "plots.html_template"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
    assert (tmp_path / ".dvc" / setting).resolve() == (tmp_path / DEFAULT).resolve()
    subprocess.run(["dvc", "plots", "show"], cwd=tmp_path, env=env, capture_output=True, check=True)
    html = (tmp_path / "dvc_plots" / "index.html").read_text()
    assert "window.vegaEmbed=" in html and "vegaEmbed('#" in html and '"loss"' in html
    assert "<script src" not in html and "cdn." not in html


def test_a_bundle_that_would_break_the_page_is_refused():
    from mainrun.config import MainrunError
    from mainrun.plots_template import page
    assert "{plot_divs}" in page("window.vegaEmbed = 1;", "1.0")
    for bad in ("a = '</script>';", "s = '{plot_divs}';"):
        with pytest.raises(MainrunError, match="cannot be inlined"):
            page(bad, "1.0")
