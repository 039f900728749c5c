"""utils/parse_options.sh: options from variables, errors, booleans, --config, positional arguments."""

from __future__ import annotations

import pytest

from tests.utils.helpers import UTILS, sh

SCRIPT = f"""#!/usr/bin/env bash
set -euo pipefail
nj=4
use_gpu=false
model_dir=
cmd="utils/run.pl"
help_message="usage: demo [--nj N] [--use-gpu true|false] <in> <out>"
. {UTILS / 'parse_options.sh'}
echo "nj=$nj use_gpu=$use_gpu model_dir=$model_dir cmd=$cmd"
printf 'arg=%s\\n' "$@"
"""


@pytest.fixture
def demo(tmp_path):
    p = tmp_path / "demo.sh"
    p.write_text(SCRIPT)
    p.chmod(0o755)
    return p


def run(demo, tmp_path, *args):
    return sh([demo, *args], tmp_path)


def test_sets_variables_and_keeps_positionals(demo, tmp_path):
    r = run(demo, tmp_path, "--nj", "8", "--use-gpu", "true", "--model_dir", "exp/a b", "--cmd",
            "utils/slurm.pl --mem 2G", "in", "--nj", "out")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["nj=8 use_gpu=true model_dir=exp/a b cmd=utils/slurm.pl --mem 2G",
                                     "arg=in", "arg=--nj", "arg=out"]


def test_defaults_and_double_dash(demo, tmp_path):
    r = run(demo, tmp_path, "--", "--nj", "x")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["nj=4 use_gpu=false model_dir= cmd=utils/run.pl", "arg=--nj", "arg=x"]


@pytest.mark.parametrize("args, message", [
    (["--bogus", "1", "in"], "invalid option --bogus"),
    (["--use-gpu", "yes", "in"], "option --use-gpu takes true or false, got 'yes'"),
    (["--nj=3", "in"], "--name=value is not accepted"),
    (["--nj"], "option --nj needs a value"),
    (["--config", "missing.conf", "in"], "config file missing.conf"),
])
def test_errors(demo, tmp_path, args, message):
    r = run(demo, tmp_path, *args)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert r.stdout == ""


def test_config_is_sourced_first_and_options_win(demo, tmp_path):
    (tmp_path / "my.conf").write_text("nj=16\nuse_gpu=true\n")
    r = run(demo, tmp_path, "--nj", "2", "--config", "my.conf", "a")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "nj=2 use_gpu=true model_dir= cmd=utils/run.pl"


def test_help(demo, tmp_path):
    r = run(demo, tmp_path, "--help")
    assert r.returncode == 0
    assert r.stdout.strip() == "usage: demo [--nj N] [--use-gpu true|false] <in> <out>"


def test_passthrough_collects_unknown_options_in_order(tmp_path):
    script = tmp_path / "wrap.sh"
    script.write_text(f"""#!/usr/bin/env bash
set -euo pipefail
source=hypr
passthrough_args=()
. {UTILS / 'parse_options.sh'}
echo "source=$source"
printf 'pass=%s\\n' "${{passthrough_args[@]}}"
printf 'arg=%s\\n' "$@"
""")
    script.chmod(0o755)
    r = sh([script, "--stage", "3", "--source", "kaldi", "--rescore_opts", "--bootstrap 10", "--stage", "4", "x"],
           tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["source=kaldi", "pass=--stage", "pass=3", "pass=--rescore_opts",
                                     "pass=--bootstrap 10", "pass=--stage", "pass=4", "arg=x"]
    r = sh([script, "--stage"], tmp_path)
    assert r.returncode == 1 and "option --stage needs a value" in r.stderr
