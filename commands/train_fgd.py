"""``gestura train-fgd``: the motion auto-encoder whose features FGD compares (project-specific:
its FGD is not comparable with published numbers)."""
from __future__ import annotations


def add_arguments(parser) -> None:
    from .training_options import add_loop_arguments

    parser.add_argument("--hidden", type=int, default=256, help="encoder width (default 256)")
    parser.add_argument("--latent", type=int, default=64, help="feature size FGD compares (default 64)")
    add_loop_arguments(parser, epochs=50, batch_size=32, lr=1e-3, window=64)


def run(args) -> int:
    from ..training.fgd_encoder import main

    return main(args)
