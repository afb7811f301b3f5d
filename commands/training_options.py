"""Command-line options of the training commands. No torch here: ``gestura --help`` imports it."""
from __future__ import annotations

import argparse


def add_loop_arguments(parser: argparse.ArgumentParser, *, epochs: int, batch_size: int, lr: float, window: int,
                       ema_default: str = "0") -> None:
    """Options every training command shares; defaults differ per stage. ``ema_default`` other than
    "0" describes a default the command sets itself: ``args.ema`` is then None until it does."""
    g = parser.add_argument_group("training loop")
    g.add_argument("--out", required=True, help="output folder: checkpoint, state for resuming, train.log, loss.png")
    g.add_argument("--epochs", type=int, default=epochs, help=f"passes over the training windows (default {epochs})")
    g.add_argument("--steps", type=int, default=None, help="stop after this many optimizer steps in total (overrides --epochs)")
    g.add_argument("--batch-size", type=int, default=batch_size, help=f"windows per step per process (default {batch_size})")
    g.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr:g})")
    g.add_argument("--warmup", type=int, default=0, help="linear learning-rate warm-up steps (default 0)")
    g.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                   help="learning-rate schedule after warm-up; cosine decays to 10%% at the last step")
    g.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (default 0)")
    g.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping, 0 = off (default 1)")
    g.add_argument("--ema", type=ema_decay, default=0.0 if ema_default == "0" else None, metavar="DECAY",
                   help="export (and validate) a moving average of the weights with this decay per step, e.g. "
                        f"0.999 for about the last thousand steps; 0 = the last step's weights (default {ema_default})")
    g.add_argument("--window", type=int, default=window, help="training window length in frames at 30 fps (default "
                   + (f"{window})" if window else "the model's prefix plus one span)"))
    g.add_argument("--stride", type=int, default=None, help="frames between window starts (default: half the window)")
    g.add_argument("--seed", type=int, default=0, help="seed for initialisation, data order and sampling (default 0)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (under torchrun: one GPU per process)")
    g.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                   help="mixed precision: auto = on for CUDA (bf16 where supported, else fp16), off on the CPU")
    g.add_argument("--threads", type=int, default=None, help="CPU threads per process (default: torch's choice)")
    g.add_argument("--save-every", type=int, default=0, help="also save the resumable state every N steps (default 0 = off)")
    g.add_argument("--save-minutes", type=float, default=10.0,
                   help="save the state (and checkpoint, plot) at the first epoch end after this many minutes (default 10)")
    g.add_argument("--val-every", type=int, default=1, help="validate every N epochs when there is a 'val' split (default 1)")
    g.add_argument("--log-every", type=int, default=10, help="steps between log lines (default 10)")
    g.add_argument("--fresh", action="store_true", help="start over even if OUT holds a state to resume from")
    g.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    d = parser.add_argument_group("data")
    d.add_argument("--data", required=True, help="folder in the BEAT2 layout (train_test_split.csv, smplxflame_30/, wave16k/)")
    d.add_argument("--speakers", default="all", help="speaker numbers to use, e.g. 2 or 2,4-6 (default all)")
    d.add_argument("--use-additional", action="store_true", help="also train on clips of type 'additional'")
    d.add_argument("--cache-dir", default=None, help="where computed features are cached (default DATA/.gestura_cache)")
    d.add_argument("--no-cache", action="store_true", help="compute features every time")
    d.add_argument("--max-mismatch", type=float, default=1.0,
                   help="skip clips whose audio and motion lengths differ by more than this many seconds (default 1)")


def ema_decay(text: str) -> float:
    """``--ema``'s value: 0 (off) or a decay in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value == 0.0 or 0.0 < value < 1.0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a decay: give a number in (0, 1) such as 0.999, or 0 for none")
    return value


def add_config_arguments(parser) -> None:
    from ..inference.config import CONFIGS

    parser.add_argument("--config", default="small", choices=sorted(CONFIGS),
                        help="model size (default small; mambatalk = the published size, for GPUs)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override one model config field, e.g. --set codebook_size=512 (repeatable)")


