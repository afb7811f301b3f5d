"""``gestura train-vq``: stage 1 (part VQ-VAEs and the global motion predictor). Cheap to import;
torch is loaded by ``run``."""
from __future__ import annotations


def add_arguments(parser) -> None:
    from .training_options import add_config_arguments, add_loop_arguments

    parser.add_argument("--part", default="all",
                        help="face, upper, hands, lower, a comma list, or all (default); the global motion "
                             "predictor trains with lower")
    parser.add_argument("--init", default=None,
                        help="start from this checkpoint's stage 1 (e.g. to add a part trained separately)")
    parser.add_argument("--decoder-only", action="store_true",
                        help="train only the decoders of --part, with the --init model's encoders, codebooks and "
                             "statistics frozen, so every clip keeps its codes; a full --init checkpoint then "
                             "comes out as a full checkpoint with its generator (OUT/gestura.safetensors)")
    parser.add_argument("--plan-decoders", action="store_true",
                        help="with --decoder-only: the upper-body and hand decoders also read the stroke plan (the "
                             "data's stroke apexes; in generation the model's plan), so that strokes peak and end "
                             "on their apexes (MODEL_CARD.md, \"Decoders that read the plan\")")
    parser.add_argument("--decoder-lookahead", type=int, default=None, metavar="FRAMES",
                        help="frames the decoders of --part look ahead (0 to frames_per_code; default: the --init "
                             "model's, else 0): they ease into a code before its first frame, against jitter at "
                             "code boundaries, and generation holds back that many frames")
    parser.add_argument("--code-noise", type=float, default=0.0, metavar="SHARE",
                        help="share of codes the decoders read swapped for one of the 8 nearest codes (default 0): "
                             "they learn to smooth over a flickering sampled code instead of jerking to it")
    parser.add_argument("--denoised", type=float, default=None, metavar="T",
                        help="with --decoder-only and a dim-gestor --init: the decoders read that model's own "
                             "reconstructions of each window's latents noised to time T in (0, 1] (DDIM down to 0 "
                             "as generation samples) instead of codebook entries, so that they decode its "
                             "in-between latents to full strokes (README, \"Decoders that read the denoiser's "
                             "latents\"); needs a --window of more than the model's prefix codes")
    # Measured on a 4-clip test set, small config, 300 steps: with resets every 10 steps the
    # reconstruction MSE was 35-40% lower per part and 95-183 of 256 codes stayed in use,
    # against 7-46 without (README, "Training").
    parser.add_argument("--reset-dead", type=int, default=10, metavar="N",
                        help="every N steps, re-seed codes unused since the last reset from encoder outputs "
                             "(default 10; 0 = off, as published MambaTalk and as --ema needs)")
    w = parser.add_argument_group("loss weights")
    w.add_argument("--w-rot", type=float, default=1.0, help="geodesic rotation loss (default 1)")
    w.add_argument("--w-rec", type=float, default=1.0,
                   help="MSE of the normalised features: rot6d, expressions, root channels, contacts (default 1)")
    w.add_argument("--w-vel", type=float, default=1.0, help="L1 velocity loss (default 1)")
    w.add_argument("--w-acc", type=float, default=1.0, help="L1 acceleration loss (default 1)")
    w.add_argument("--w-jerk", type=float, default=0.0,
                   help="L1 jerk loss (third differences), against jitter at code boundaries (default 0)")
    w.add_argument("--w-foot", type=float, default=1.0, help="foot skate penalty on the lower body, m/s (default 1)")
    add_config_arguments(parser)
    add_loop_arguments(parser, epochs=100, batch_size=32, lr=3e-4, window=64)


def run(args) -> int:
    from ..training.common import parts_list
    from ..training.train_vq import main

    parts_list(args.part)  # a bad --part fails before torch loads
    if args.ema and args.reset_dead and not args.decoder_only:
        from ..errors import CommandError

        # A re-seeded code jumps to an encoder output; the average would keep it near the dead one.
        raise CommandError(f"--ema {args.ema:g} averages the codebooks that --reset-dead {args.reset_dead} re-seeds: "
                           "add --reset-dead 0, or train without --ema")
    return main(args)
