"""Choosing codes from logits: argmax at temperature 0, otherwise sampling with optional top-k /
top-p (nucleus) truncation; MaskGIT's schedule of how many codes each decoding pass fixes; and
classifier-free guidance (``guided``), through which style strength and plan strength act. NumPy
only; one random stream per part so that switching a part on or off does not change what the
other parts draw."""
from __future__ import annotations

import numpy as np

from ..rigs.skeleton import PARTS

# The default of every front end (panel, operator, command line, worker, evaluation). Lower
# temperatures favour the most likely code of each position: 0 gives one repeatable take that
# still follows the speech, higher values more varied takes (MODEL_CARD.md).
DEFAULT_TEMPERATURE = 0.9
# A model reproduces its speakers' styles only partly; strength > 1 restores the differences.
# In the condition (``guided``), 1.5 brings the bundled model's speakers within 25 % of their
# data on 10 of 12 figures at FGD 10.7, where the same strength as guidance on the logits gave 9
# and 12.3 (3 takes of the held-out clips; MODEL_CARD.md, "Style strength in the condition").
DEFAULT_STYLE_STRENGTH = 1.5
# The body reads its stroke plan only partly (given the data's own apexes, the bundled model's wrist
# speed before them is 1.69x its mean, the data's 2.75x); guidance away from an empty plan makes it
# stroke where the plan says and leave fewer arms held up. 3 against 2 (the bundled model before its
# stroke planner, 6 takes of the held-out clips): hands kept raised on 1.7 % of frames against
# 6.1 % (the data: 1.2 %), with decoders tuned against the jerk it adds (MODEL_CARD.md, "Plan
# strength 3"). A DiM-Gestor model with a stroke planner takes the same 3 (README, "Plan guidance":
# apex ratio 1.87 against 1.80, corpus correlation 0.195 against 0.183).
DEFAULT_PLAN_STRENGTH = 3.0
# Decoding passes per span (MaskGIT uses 8-12 for images). Against 4, 8 passes raised every
# held-out figure of the bundled model (3 takes of the test split: jitter 64 -> 60 m/s^3, held arms
# 4.3 -> 3.6 %, apex ratio 1.28 -> 1.34, rest in silence 0.27 -> 0.20, FGD 12.4 -> 12.3) for twice
# the span passes; 6, tried only with smoother decoders, held more arms (MODEL_CARD.md).
PASSES = 8


# The largest seed Blender's panel takes (an IntProperty is a signed 32-bit integer): a take made
# anywhere else with a larger seed could not be made again there.
MAX_SEED = 2**31 - 1


def check_seed(seed) -> int:
    """``seed`` as an int, or ValueError unless it is a whole number from 0 to ``MAX_SEED``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed {seed!r} is out of range: use a whole number from 0 to {MAX_SEED} "
                         f"(the seeds the Blender panel takes)")
    return int(seed)


def part_rngs(seed: int, parts=PARTS) -> dict:
    """One generator per part for a seed from ``check_seed``: each part's draws are its own, so
    switching a part off leaves the others' codes as they were."""
    return {part: np.random.default_rng([int(seed), PARTS.index(part)]) for part in parts}


def check_sampling(temperature: float, top_k, top_p, style_strength: float = 1.0, plan_strength: float = 1.0) -> None:
    if not np.isfinite(style_strength) or style_strength < 0:
        raise ValueError(f"style strength must be a finite number >= 0 (0 = no particular speaker, 1 = the style as "
                         f"learnt, more exaggerates it), got {style_strength}")
    if not np.isfinite(plan_strength) or plan_strength < 0:
        raise ValueError(f"plan strength must be a finite number >= 0 (0 = ignore the stroke plan, 1 = as learnt, "
                         f"more strokes more crisply on it), got {plan_strength}")
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = always the most likely code), "
                         f"got {temperature}")
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"top-k must be 1 or more (draw from that many of the likeliest codes), got {top_k}")
    if top_p is not None and not 0.0 < float(top_p) <= 1.0:
        raise ValueError(f"top-p must be more than 0 and at most 1 (draw from the likeliest codes holding that "
                         f"share of the probability), got {top_p}")


def guided(conditioned, unconditioned, strength: float):
    """Classifier-free guidance (Ho and Salimans 2022): ``unconditioned + strength (conditioned -
    unconditioned)``, numpy arrays or torch tensors of one shape. 0 = as without the condition,
    1 = ``conditioned`` itself (returned as it is, with no rounding through the difference), more
    exaggerates it. Gestura guides three things with it: the speaker embedding the span generator
    hears, against the mean style (style strength, no network row of its own: MODEL_CARD.md,
    "Style strength in the condition"); the code logits, against those of an empty stroke plan
    (plan strength); and a diffusion model's clean estimate, against the voice alone's (style
    strength) and, at low noise, against an empty stroke plan's (plan strength)."""
    if strength == 1.0:
        return conditioned
    return unconditioned + strength * (conditioned - unconditioned)


def still_hidden(hidden: int, passes_done: int, passes: int = PASSES) -> int:
    """How many of ``hidden`` codes stay hidden after ``passes_done`` of ``passes`` decoding passes:
    MaskGIT's cosine schedule, floor(hidden cos(pi/2 done/passes)), none after the last pass."""
    if passes_done >= passes:
        return 0
    return int(np.floor(hidden * np.cos(0.5 * np.pi * passes_done / passes)))


def sample_codes(logits: np.ndarray, rng: np.random.Generator, temperature, top_k=None, top_p=None):
    """Codes for n positions from logits (n, K) -> (codes (n,) int64, confidence (n,) float64).

    Temperature 0: argmax (ties to the lowest index); otherwise one draw per position from
    softmax(logits / temperature), truncated to the top k codes and / or the nucleus of mass
    ``top_p``. ``temperature`` is one value or one per position (n,) (the pipeline's 0 in pauses).
    The confidence is the code's probability under softmax(logits) whatever the
    temperature and truncation (as MaskGIT's): the decoding order is the model's, so top_k 1
    fixes the same codes in the same passes as temperature 0. One ``rng.random(n)`` call per use
    unless ``temperature`` is the single value 0, so the stream advances by n whatever the codes
    and whichever positions are taken at 0 (a pause leaves the draws after it as they were)."""
    logits = np.asarray(logits, np.float64)
    n, k = logits.shape
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    model_p = np.exp(logits - logits.max(axis=1, keepdims=True))
    model_p /= model_p.sum(axis=1, keepdims=True)
    greedy = np.argmax(logits, axis=1)
    if np.ndim(temperature) == 0 and temperature <= 0:
        return greedy.astype(np.int64), model_p[np.arange(n), greedy]
    temperature = np.broadcast_to(np.asarray(temperature, np.float64), (n,))
    z = logits / np.where(temperature > 0, temperature, 1.0)[:, None]
    if top_k is not None and int(top_k) < k:
        kth = np.partition(z, -int(top_k), axis=1)[:, -int(top_k)][:, None]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, axis=1, kind="stable")
        sorted_p = np.take_along_axis(p, order, axis=1)
        before = np.cumsum(sorted_p, axis=1) - sorted_p  # mass of the codes ranked above each one
        keep = np.zeros_like(p, dtype=bool)
        np.put_along_axis(keep, order, before < top_p, axis=1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=1, keepdims=True)
    cdf = np.cumsum(p, axis=1)
    draw = rng.random(n)[:, None] * cdf[:, -1:]
    codes = np.where(temperature > 0, np.minimum((cdf <= draw).sum(axis=1), k - 1), greedy)
    return codes.astype(np.int64), model_p[np.arange(n), codes]
