"""``gestura train``: stage 2 on frozen stage-1 weights, of either model family: the speech-to-code
generator ("vq-mamba", the default) or the DiM-Gestor diffusion model ("dim-gestor"). Cheap to
import; torch is loaded by ``run``."""
from __future__ import annotations


# A diffusion model is sampled from the moving average of its weights; the last step's swing
# (README, "DiM-Gestor: diffusion with a Mamba-2 denoiser", "Trained longer, and sampled from the
# average of the weights").
DIFFUSION_EMA = 0.999


def add_arguments(parser) -> None:
    from .training_options import add_loop_arguments

    parser.add_argument("--vq", nargs="+", default=None, metavar="CKPT",
                        help="stage-1 checkpoint(s) from train-vq (required, except with --stroke-planner); with "
                             "several (parts trained separately) each part comes from the last one that trained it")
    parser.add_argument("--family", choices=("vq-mamba", "dim-gestor"), default="vq-mamba",
                        help="stage-2 model: vq-mamba (MambaTalk-style masked code generator, default) or "
                             "dim-gestor (diffusion with an AdaLN Mamba-2 denoiser; --set denoiser_block=attention "
                             "trains the transformer baseline)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a generator config field, e.g. --set d_model=256 --set global_layers=4 "
                             "(stage-1 fields come from --vq)")
    parser.add_argument("--init", default=None, metavar="CKPT",
                        help="start from this full checkpoint's stage-2 weights (same family, config and speakers) "
                             "instead of fresh ones, e.g. to train the bundled model further, keeping the audio "
                             "statistics they learnt with; pass the same file to --vq to keep its VQ-VAEs and decoders")
    parser.add_argument("--stroke-planner", action="store_true",
                        help="vq-mamba: train only a stroke planner for the --init model (speech scans and an apex "
                             "head of its own, on the stroke-apex loss alone; every other weight stays), which then "
                             "makes the stroke plan its body follows")
    parser.add_argument("--planner-pitch", action="store_true",
                        help="with --stroke-planner: the planner also hears each frame's voicing and pitch, by which "
                             "speakers mark stressed syllables (a planner that already does keeps them)")
    parser.add_argument("--planner-from", default=None, metavar="CKPT",
                        help="dim-gestor: read a stroke plan made by this model's stroke planner (copied in, frozen, "
                             "with its threshold, stroke rates and audio statistics; the bundled model has one), so "
                             "that strokes land where the planner hears them; training reads the data's plan")
    parser.add_argument("--apex-weight", type=float, default=1.0,
                        help="vq-mamba: weight of the stroke-apex loss next to the code loss (default 1)")
    parser.add_argument("--part-drop", type=float, default=0.1,
                        help="probability of hiding one part's codes for a whole window (as when it is switched off) (default 0.1)")
    parser.add_argument("--audio-augment", type=int, default=0, metavar="N",
                        help="hear each training clip's audio also as N other recordings would sound (a room, a "
                             "telephone or small microphone, background noise, another level), so that the model "
                             "follows real recordings as well as clean synthetic speech (default 0: clean only)")
    parser.add_argument("--no-val", dest="val", action="store_false", help="skip validation on the 'val' split")
    add_loop_arguments(parser, epochs=100, batch_size=16, lr=5e-4, window=None,
                       ema_default=f"{DIFFUSION_EMA:g} with --family dim-gestor, else 0")


def run(args) -> int:
    from ..errors import CommandError

    if any(item.partition("=")[0].strip() == "family" for item in args.set or []):
        raise CommandError("--set family=... is not how the family is chosen: use --family")
    if args.audio_augment < 0:
        raise CommandError(f"--audio-augment {args.audio_augment} is negative: give 0 (off) or a number of copies")
    if args.stroke_planner and (args.family != "vq-mamba" or args.set or args.vq):
        raise CommandError("--stroke-planner keeps the --init model as it is: leave out --family, --set and --vq")
    if args.planner_pitch and not args.stroke_planner:
        raise CommandError("--planner-pitch is for a stroke planner: add --stroke-planner --init CKPT")
    if args.planner_from and args.family != "dim-gestor":
        raise CommandError("--planner-from gives a diffusion model a stroke plan: add --family dim-gestor (a "
                           "vq-mamba model trains its own planner with --stroke-planner)")
    if not args.stroke_planner and not args.vq:
        raise CommandError("--vq is required: name the stage-1 checkpoint(s) from gestura train-vq (or train a "
                           "stroke planner for an existing model with --stroke-planner --init CKPT)")
    if args.ema is None:
        args.ema = DIFFUSION_EMA if args.family == "dim-gestor" else 0.0
    if args.family == "dim-gestor":
        from ..training.train_diffusion import main
    else:
        from ..training.train_generator import main
    return main(args)
