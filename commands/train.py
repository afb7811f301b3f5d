"""``gestura train``: stage 2 (the speech-to-code generator on frozen stage-1 weights). Cheap to
import; torch is loaded by ``run``."""
from __future__ import annotations


def add_arguments(parser) -> None:
    from .training_options import add_loop_arguments

    parser.add_argument("--vq", nargs="+", required=True, metavar="CKPT",
                        help="stage-1 checkpoint(s) from train-vq; with several (parts trained separately) "
                             "each part comes from the last one that trained it")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a generator config field, e.g. --set d_model=256 --set global_layers=4 "
                             "(stage-1 fields come from --vq)")
    parser.add_argument("--switch-weight", type=float, default=1.0,
                        help="weight of the code loss on frames where the code changes (default 1 = every frame alike)")
    parser.add_argument("--latent-weight", type=float, default=3.0, help="weight of the latent regression MSE (default 3)")
    parser.add_argument("--mask-start", type=float, default=0.1,
                        help="ceiling of the hidden fraction of previous latents at step 0 (default 0.1)")
    parser.add_argument("--mask-max", type=float, default=0.6, help="ceiling it grows to (default 0.6)")
    parser.add_argument("--mask-ramp", type=float, default=0.5,
                        help="fraction of training over which the ceiling grows (default 0.5)")
    parser.add_argument("--part-drop", type=float, default=0.1,
                        help="probability of hiding one part's previous latents for a whole window (default 0.1)")
    parser.add_argument("--no-val", dest="val", action="store_false", help="skip validation on the 'val' split")
    add_loop_arguments(parser, epochs=100, batch_size=16, lr=5e-4, window=128)


def run(args) -> int:
    from ..training.train_generator import main

    return main(args)
