"""The ``gestura`` command line. Each subcommand lives in its own module, imported only when used.

A command module provides ``add_arguments(parser)`` and ``run(args) -> int`` and must be cheap to
import (no torch, no bpy at module level), because ``gestura --help`` imports all of them.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import CommandError, GesturaError  # noqa: F401  (CommandError: the name commands raise)

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("gestura.commands_info", "show the version, the engines this Python can run and the bundled model"),
    "generate": ("gestura.inference.cli_generate", "generate SMPL-X gesture motion (.npz, .bvh) from speech audio files"),
    "params": ("gestura.inference.cli_params", "print the parameter counts of the model configs"),
    "synth": ("gestura.training.synth.corpus", "write the synthetic speech + gesture corpus (BEAT2 layout) the bundled model trains on"),
    "train-vq": ("gestura.training.cli_train_vq", "train stage 1 (part VQ-VAEs, global motion predictor) on BEAT2-layout data"),
    "train": ("gestura.training.cli_train", "train stage 2 (the speech-to-code generator) on frozen stage-1 weights"),
    "train-fgd": ("gestura.training.cli_train_fgd", "train the motion encoder FGD uses (project encoder)"),
    "eval": ("gestura.training.cli_eval", "score a checkpoint on a BEAT2-layout split: BC, L1 diversity, FGD, jitter, foot sliding"),
}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="gestura", description="Speech-driven full-body gestures for SMPL-X.")
    parser.add_argument("--version", action="version", version=f"gestura {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except GesturaError as error:
        print(f"gestura {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gestura {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
