"""The one command-line interface: ``audioprobe <command>``.

Each stage contributes its commands through a module with a ``register(subparsers)``
function (listed in ``COMMAND_MODULES``); a command's handler receives the parsed
arguments and returns an exit status. Heavy libraries are imported inside handlers so
that ``audioprobe --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence

from . import __version__
from .allocator import retain_freed_memory
from .errors import AudioprobeError
from .log import logger, set_verbosity

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

COMMAND_MODULES = (
    "audioprobe.corpora.cli",
    "audioprobe.features.cli",
    "audioprobe.models.cli",
    "audioprobe.pretrain.cli",
    "audioprobe.probes.cli",
    "audioprobe.analysis.cli",
    "audioprobe.figures.cli",
    "audioprobe.study_cli",
)


def _add_verbosity(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=default, help="more detail (debug messages)")
    parser.add_argument("-q", "--quiet", action="store_true", default=False if default == 0 else default,
                        help="only warnings and errors; no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """Return the full argument parser, with every stage's commands registered."""
    parser = argparse.ArgumentParser(
        prog="audioprobe",
        description="Probe which acoustic properties each layer of an audio network encodes, and compare "
                    "networks by the domain they were pretrained on: speech, nonspeech (music and environmental "
                    "sound), mixed (speech and non-speech), against the random-weight control (none). Clips are "
                    "speech, music or environmental.")
    parser.add_argument("--version", action="version", version=f"audioprobe {__version__}")
    _add_verbosity(parser, default=0)
    common = argparse.ArgumentParser(add_help=False)
    _add_verbosity(common, default=argparse.SUPPRESS)  # given after the command, overrides the global flags
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    subparsers.common_parent = common  # stage modules pass it as a parent to their parsers
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(subparsers)
    return parser


def _flag_names(parser: argparse.ArgumentParser, command: str | None) -> dict[str, str]:
    """Python parameter name -> command-line flag, for the options of ``command`` whose names differ."""
    sub = next((a.choices[command] for a in parser._actions if isinstance(a, argparse._SubParsersAction)
                and command in a.choices), None)
    names = {"force=True": "--force"}
    for action in sub._actions if sub is not None else ():
        flag = next((o for o in action.option_strings if o.startswith("--")), None)
        if flag is None:
            continue
        if "_" in action.dest:
            names[action.dest] = flag
        names[f"n_{action.dest}"] = flag  # n_permutations -> --permutations, n_jobs -> --jobs
    return names


def _in_cli_terms(message: str, names: dict[str, str]) -> str:
    """``message`` with the Python parameter names of ``names`` replaced by the flags a CLI user typed."""
    pattern = re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
                         + r")(?![\w])")
    return pattern.sub(lambda m: names[m.group(1)], message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``audioprobe`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    set_verbosity(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    retain_freed_memory()
    try:
        return int(args.func(args) or 0)
    except AudioprobeError as exc:  # one line, in the words of the command line
        logger.error("error: %s", _in_cli_terms(str(exc), _flag_names(parser, getattr(args, "command", None))))
        return 2
    except KeyboardInterrupt:
        logger.error("interrupted; finished work is kept and a re-run resumes it")
        return 130


if __name__ == "__main__":
    sys.exit(main())
