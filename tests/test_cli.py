"""The one CLI: help, version, verbosity flags, errors as exit codes."""
from __future__ import annotations

import subprocess
import sys

import pytest

from audioprobe import __version__
from audioprobe.cli import build_parser, main


def test_console_script_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "audioprobe", "--help"], capture_output=True, text=True, check=True)
    assert "corpus" in out.stdout
    for command in build_parser()._subparsers._group_actions[0].choices:
        assert command in out.stdout


def test_help_names_the_pretraining_domains_it_compares(capsys):
    from audioprobe.contract import CLIP_DOMAINS, NONSPEECH_DOMAINS, PRETRAIN_DOMAINS

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for domain in PRETRAIN_DOMAINS:
        assert f"{domain} (" in text or f"{domain}:" in text or f"({domain})" in text or f" {domain}," in text, domain
    assert f"nonspeech ({' and '.join(NONSPEECH_DOMAINS)} sound)" in text
    assert f"Clips are {', '.join(CLIP_DOMAINS[:-1])} or {CLIP_DOMAINS[-1]}." in text


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and __version__ in capsys.readouterr().out


def test_verbosity_flags_before_or_after_command(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["-q", "corpus", "check", "x.csv"])
    assert args.quiet is True
    args = parser.parse_args(["corpus", "check", "-v", "x.csv"])
    assert args.verbose == 1 and args.quiet is False


def test_package_error_becomes_exit_status_with_message(tmp_path, caplog):
    bad = tmp_path / "m.csv"
    bad.write_text("clip_id,path\n")
    assert main(["corpus", "check", str(bad)]) == 1


@pytest.mark.parametrize("argv", [["--help"], ["probe", "--help"], ["features", "--help"], ["extract", "--help"]])
def test_help_loads_no_heavy_library(argv):
    """``--help`` builds the parser only: numpy, pandas, torch, librosa, Praat and matplotlib stay unloaded."""
    code = ("import sys\nfrom audioprobe.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('numpy', 'pandas', 'torch', 'librosa', 'parselmouth', 'matplotlib', 'scipy')"
            " if m in sys.modules))" % (argv,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr


def test_errors_name_the_flags_the_user_typed(tmp_path, capsys):
    from test_probes_driver import make_run

    run = make_run(tmp_path / "run", models=("solo",))
    assert main(["probe", str(run.path), "--permutations", "-3", "-q"]) == 2
    err = capsys.readouterr().err
    assert "--permutations must be a non-negative integer, got -3" in err and "n_permutations" not in err
