"""``gestura info``: what this installation can do, and which model it would use."""
from __future__ import annotations

import importlib.util
import platform

from ..errors import CommandError
from ..rigs.skeleton import PARTS


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", default=None, help="describe this checkpoint instead of the bundled one")


def run(args) -> int:
    from .. import __version__
    from ..inference.architecture import parameter_count
    from ..inference.checkpoint import CheckpointError, default_checkpoint_path, load_checkpoint

    print(f"gestura {__version__} on Python {platform.python_version()} ({platform.machine()})")
    for module in ("numpy", "torch", "mamba_ssm", "bpy", "smplx", "soundfile"):
        found = importlib.util.find_spec(module) is not None
        print(f"  {module:10s} {'available' if found else 'not installed'}")
    if importlib.util.find_spec("torch") is not None:
        import torch

        cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
        print(f"  torch {torch.__version__}: {cuda}")
    from ..inference.engines.registry import resolve_engine

    print(f"  engine 'auto' (gestura generate's default) runs {resolve_engine('auto').describe()}")

    path = args.checkpoint or default_checkpoint_path()
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as error:
        if args.checkpoint is not None:
            raise CommandError(str(error)) from None
        print(f"model: {error}")  # no bundled model is worth reporting, not failing on
        return 0
    config = checkpoint.config
    # `gestura params` counts a named config, which has no stroke planner: say what the difference is.
    planner = sum(t.size for name, t in checkpoint.tensors.items() if name.startswith("generator.planner."))
    print(f"model: {checkpoint.path}")
    print(f"  config {config.name}, {parameter_count(config):,} parameters, stage '{checkpoint.stage}'"
          + (f", family '{config.family}'" if config.family != "vq-mamba" else "")
          + (f", with a stroke planner ({planner:,} of the parameters)" if config.stroke_planner else "")
          + (" that hears pitch" if config.planner_pitch else "")
          + (", decoders that read the plan" if config.plan_decoders else "")
          + (f", decoders that look ahead ({', '.join(f'{p} {config.decoder_lookahead[p]}' for p in PARTS if config.decoder_lookahead[p])} "
             f"frames)" if any(config.decoder_lookahead.values()) else ""))
    default = checkpoint.style_index(None)
    print("  styles: " + ", ".join(f"{name} (default)" if i == default else name
                                   for i, name in enumerate(checkpoint.styles)))
    return 0
