"""Options of a generation that ``gestura generate`` and ``blender_batch.py`` both take.

One declaration of the shared options (names, types, help), as MDM's ``add_*_options`` do; each
entry point says only what differs: its defaults and its engine choices. Imports nothing but
argparse: ``blender_batch.py`` loads this file by its path, before Blender has loaded the add-on.
"""
from __future__ import annotations

import argparse


def add_generation_options(parser: argparse.ArgumentParser, *, engines, engine_default, engine_help: str,
                           temperature_default, style_strength_default, plan_strength_default, checkpoint_help: str,
                           overwrite_help: str) -> None:
    """``--checkpoint --style --seed --temperature --style-strength --plan-strength --sampling-steps
    --parts --engine --overwrite``.
    ``engines``: the ``--engine`` choices (None: any text, checked once the package is loaded);
    a ``None`` default for temperature, style or plan strength leaves the value to the caller (the scene's)."""
    g = parser.add_argument_group("generation")
    scene = "the scene's if set, else " if temperature_default is None else ""
    g.add_argument("--checkpoint", default=None, help=checkpoint_help)
    g.add_argument("--style", default=None, help="speaker style name from the model (default: the model's default "
                                                  "style; a dim-gestor model takes the style from the voice instead)")
    g.add_argument("--seed", type=int, default=0,
                   help="random seed, 0 to 2147483647 (the Blender panel's); the same seed gives the same motion "
                        "(default 0)")
    g.add_argument("--temperature", type=float, default=temperature_default,
                   help="sampling temperature; 0 = always the most likely motion "
                        f"({_default(temperature_default)})")
    g.add_argument("--style-strength", type=float, default=style_strength_default,
                   help="how strongly the style shows: 0 = no particular speaker, 1 = as the model learnt it, "
                        f"more exaggerates it; costs nothing, except that other than 1 doubles a dim-gestor "
                        f"model's work ({_default(style_strength_default)})")
    g.add_argument("--plan-strength", type=float, default=plan_strength_default,
                   help="how closely the body strokes on its stroke plan (span models, and dim-gestor models with a "
                        f"stroke planner): 0 = ignores it, 1 = as the model learnt it, more = crisper strokes on "
                        f"it; other than 1 runs one more row where a stroke is planned (a dim-gestor model: on its "
                        f"low-noise steps) ({_default(plan_strength_default)})")
    g.add_argument("--sampling-steps", type=int, default=None, metavar="N",
                   help="DDIM steps of a diffusion (dim-gestor) model, 1-1000: more are slower and smoother "
                        f"(default: {scene}the model's own)")
    g.add_argument("--parts", default=None,
                   help="body parts to generate, comma-separated from face,upper,hands,lower (default all); "
                        "the others stay at rest")
    g.add_argument("--engine", choices=engines, default=engine_default, help=engine_help)
    g.add_argument("--overwrite", action="store_true", help=overwrite_help)


def _default(value) -> str:
    return "default: the scene's" if value is None else f"default {value:g}"
