"""The ``gestura`` command line: a table of sub-commands, each a module of ``commands/``.

A command module provides ``add_arguments(parser)`` and ``run(args) -> int`` and must be cheap to
import (no torch, no bpy at module level), because ``gestura --help`` imports all of them. Any
``GesturaError`` a command lets through is printed as one line ``gestura <cmd>: error: ...``, and
so is a malformed command line (argparse's own messages, without its usage block).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import GesturaError

# command -> (its module in commands/, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "show the version, the engines this Python can run and the bundled model"),
    "generate": ("generate", "generate SMPL-X gesture motion (.npz, .bvh, .blend) from speech audio files"),
    "params": ("params", "print the parameter counts of the model configs"),
    "synth": ("synth", "write the synthetic speech + gesture corpus (BEAT2 layout) the bundled model trains on"),
    "train-vq": ("train_vq", "train stage 1 (part VQ-VAEs, global motion predictor) on BEAT2-layout data"),
    "train": ("train", "train stage 2 (the speech-to-code generator) on frozen stage-1 weights"),
    "train-fgd": ("train_fgd", "train the motion encoder FGD uses (project encoder)"),
    "eval": ("eval", "score a checkpoint on a BEAT2-layout split: BC, L1 diversity, FGD, jitter, foot sliding"),
}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the command and where its help is, not
    the whole usage block (which for ``generate`` or ``train`` runs to a screenful)."""

    def parse_known_args(self, args=None, namespace=None):
        self._arguments = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        options = [a for a in getattr(self, "_arguments", []) if a.startswith("-")]
        if message.endswith("required: COMMAND") and options:  # ``gestura --bogus``: say what was wrong
            message = f"unrecognized arguments: {' '.join(options)}; a command comes first (gestura COMMAND ...)"
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = OneLineParser(prog="gestura", description="Speech-driven full-body gestures for SMPL-X.")
    parser.add_argument("--version", action="version", version=f"gestura {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=OneLineParser)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"{__package__}.commands.{module_name}")
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run, _parser=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    args, unknown = build_parser().parse_known_args(argv)
    if unknown:  # said by the command's parser, which knows its options, not by gestura's
        args._parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args._run(args) or 0)
    except GesturaError as error:
        print(f"gestura {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gestura {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped early (``| head``): not an error to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush cannot fail again
        return 1


if __name__ == "__main__":
    sys.exit(main())
