"""``gestura eval``: BC, speed, L1 diversity, FGD, jitter, foot sliding and the timing metrics of a checkpoint on a split."""
from __future__ import annotations

from ..inference.engines.registry import COMMAND_LINE_ENGINES
from ..inference.sampling import DEFAULT_PLAN_STRENGTH, DEFAULT_STYLE_STRENGTH, DEFAULT_TEMPERATURE


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="folder in the BEAT2 layout")
    parser.add_argument("--checkpoint", default=None, help="a full checkpoint (default: the bundled model)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test", "additional"),
                        help="clips to generate and score (default test)")
    parser.add_argument("--speakers", default="all", help="speaker numbers, e.g. 2 or 2,4-6 (default all)")
    parser.add_argument("--fgd-encoder", default=None, help="encoder file from gestura train-fgd (FGD is skipped without)")
    parser.add_argument("--json", default=None, help="where to write the results (default CHECKPOINT.eval.json)")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE,
                        help=f"sampling temperature (default {DEFAULT_TEMPERATURE}; 0 = argmax)")
    parser.add_argument("--style-strength", type=float, default=DEFAULT_STYLE_STRENGTH,
                        help=f"style strength (default {DEFAULT_STYLE_STRENGTH:g}; 1 = the style as learnt)")
    parser.add_argument("--plan-strength", type=float, default=DEFAULT_PLAN_STRENGTH,
                        help=f"plan strength of a model that strokes on a plan (default {DEFAULT_PLAN_STRENGTH:g}; 1 = the plan as learnt)")
    parser.add_argument("--sampling-steps", type=int, default=None, metavar="N",
                        help="DDIM steps of a diffusion (dim-gestor) model (default: the model's own)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the first clip; clip i uses seed + i, its take k seed + k * clips + i (default 0)")
    parser.add_argument("--engine", default="torch", choices=COMMAND_LINE_ENGINES, help="engine (default torch)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--max-clips", type=int, default=0, help="score only the first N clips (default all)")
    parser.add_argument("--rest-seeds", type=int, default=5,
                        help="seeds for rest in silence: the first two clips around 6 s of zeros (default 5; 0 = skip)")
    parser.add_argument("--takes", type=int, default=1,
                        help="generate every clip this many times with other seeds and report the mean over takes "
                             "and the lowest and highest take (default 1; one take's figures vary, use 3 or more "
                             "to compare models)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    parser.add_argument("--cache-dir", default=None, help="feature cache folder (default DATA/.gestura_cache)")
    parser.add_argument("--no-cache", action="store_true", help="compute features every time")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..training.evaluate import main

    return main(args)
