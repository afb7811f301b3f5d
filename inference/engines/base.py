"""The engine contract: what the pipeline asks of a model (``Engine``), and of a whole-request engine.

The pipeline (``pipeline.py``, numpy only) does everything that is not the network: audio
loading, features and their normalisation, the span schedule, the decoding passes, sampling,
seeds, part toggles, start pose, turning part features back into motion. It asks an engine for
seven things, all numpy in and out (float32 arrays, int64 codes); the causal state of a stream
(speech encoder, VQ decoders) is kept by the engine in an opaque object returned by ``start``.
r = ``config.frames_per_code``, d = ``config.d_model``, K = ``config.codebook_size``.

``prepare(checkpoint)``
    Load the weights of a ``checkpoint.Checkpoint`` (stage "full"); called before each request,
    so cache by checkpoint.
``encode(part, features (n r, PART_DIMS[part])) -> codes (n,) int64``
    VQ-VAE encoder + nearest code of normalised part features, from zero history (start poses).
``start(parts: tuple[str]) -> state``
    A new stream: zero conv and scan states everywhere; ``parts`` are the generated parts.
``speech(state, features (n, config.input_width)) -> (n, w)``
    The causal speech encoder (``Generator.stream_speech``) over the next ``n`` normalised
    feature frames (``features.normalize``; voicing and pitch too for a ``planner_pitch``
    checkpoint), advancing the state. Row ``j`` belongs to audio frame ``j``. w =
    ``config.speech_width``: the body's d states, and the stroke planner's d beside them when
    the checkpoint has one; for a "dim-gestor" checkpoint with a stroke planner the planner's
    alone (``DiffusionGenerator.stream_speech``).
``context(speech (n r + L, w), styles: tuple, plans: tuple | None = None, threshold=None) -> (context (len(styles), n, d), plan (len(styles), n r))``
    What a window of n codes hears (``Generator.window_context``: the window scan, the stroke
    plan of the apex head or the stroke planner, and ``code_in``), and the stroke plan each row
    read (float32, ``stroke_plan.stroke_plan``), for each style in ``styles``
    (an index, or None for the mean style). ``plans``: per style, False where that row hears an
    empty stroke plan (what plan strength guides away from); None: every row reads its plan.
    ``threshold``: the plan's threshold, a number or a function of the window's apex
    probabilities (len(styles), n r) that returns one (the pipeline's ``StrokeRate``); None: the
    checkpoint's ``apex_threshold``.
    ``speech`` holds the speech states of audio frames ``[r c0, r (c0 + n) + L)`` for the
    window's first code c0 and the look-ahead L. Stateless; called once per window.
``span(context (len(styles), n, d), known: {part: (n,) int64}, styles, parts, style_strength=1.0) -> {part: (len(styles), n, K)}``
    One pass of the span generator (``known_latents`` + ``span_logits``) over the window, the
    styles batched, each style's embedding ``style_strength`` times as far from the mean style as
    learnt (``sampling.guided``); ``known`` gives every part's fixed codes, -1 where unknown
    (switched-off parts are all -1). Stateless; called once per decoding pass.
``decode_latents(state, latents: {part: (n, D)}, plan=None) -> {part: (n r, PART_DIMS[part])}``
    VQ decoders with carried causal-conv state (normalised part features) from latents in the
    codebooks' space. For "lower" the root channels ``[54:57]`` are replaced by the global motion
    predictor's output on the decoded lower body (its own carried state), as MambaTalk recovers
    translation. ``plan`` (n r,): the stroke plan of the decoded frames, which the decoders of a
    ``config.plan_decoders`` checkpoint read (None: no apexes; other decoders ignore it).
    ``decode(state, codes: {part: (n,) int}, plan=None)`` decodes the codes' codebook rows.

A checkpoint of the "dim-gestor" family (``torch_model/diffusion.py``) has no speech encoder
state and no code logits; the pipeline asks instead, C = ``config.latent_dim``:

``condition(features (n r + L, config.input_width), styles: tuple, speech=None, threshold=None, plan=None) -> (cond (n, d), style (len(styles), d), plan)``
    The speech extractor over a window's normalised audio features (its n codes' frames plus the
    look-ahead): per-code conditions, and a style vector per entry of ``styles`` (a style index,
    or None for the voice alone). A checkpoint with a stroke planner also reads the stroke plan
    (n r,) float32 that its planner makes from ``speech``, the window's states from ``speech()``
    (n r + L, d), for the first of ``styles`` at ``threshold`` (as ``context``'s), and returns
    it; without one ``speech`` is None and so is ``plan``. A ``plan`` (n r,) given is read in place
    of the planner's (plan guidance's empty plan) and returned. Stateless; once per window, twice
    with plan guidance.
``denoise(x (len(styles), n, C), t, cond, style, known (n, C), mask (n, 4)) -> (len(styles), n, C)``
    The denoiser's clean estimate of the noisy normalised latents ``x`` at noise level ``t`` in
    [0, 1], the styles batched; ``known`` holds the latents that are fixed where ``mask`` is 1
    (per code and part). Stateless; once per sampling step.

The pipeline calls these at absolute positions (speech in fixed blocks of frames, spans of
``span_codes`` codes), so whole-clip and streamed generation do the same arithmetic.
``TorchEngine`` (``engines/torch.py``) implements them all with ``torch_model``; ``NumpyEngine``
(``engines/numpy.py``) with ``numpy_model``, which mirrors the same module tree
(``architecture.py``). The external engine is different: it runs a whole request in another
interpreter (``engines/external.py``), so it is a ``RequestEngine``: the pipeline hands it the
request. Which engine runs is chosen in ``engines/registry.py``.
"""
from __future__ import annotations

import abc

import numpy as np

from ...rigs.skeleton import ordered_parts
from ..errors import EngineError

DEVICES = ("auto", "cpu", "cuda")


def check_device(device: str) -> str:
    """``device`` if it is one of ``DEVICES``, else EngineError naming the choices."""
    if device not in DEVICES:
        raise EngineError(f"unknown device '{device}': choose one of {', '.join(DEVICES)}")
    return device


class Engine(abc.ABC):
    """Step-level model engine (see the module docstring for the contract)."""

    name = "engine"

    def __init__(self, device: str = "auto") -> None:
        self.requested_device = check_device(device)
        self.device = "cpu"
        self.checkpoint = None

    @abc.abstractmethod
    def prepare(self, checkpoint) -> None: ...

    @abc.abstractmethod
    def encode(self, part: str, features): ...

    @abc.abstractmethod
    def start(self, parts: tuple): ...

    @abc.abstractmethod
    def speech(self, state, features): ...

    @abc.abstractmethod
    def context(self, speech, styles: tuple, plans: tuple | None = None, threshold=None): ...

    @abc.abstractmethod
    def span(self, context, known: dict, styles: tuple, parts: tuple, style_strength: float = 1.0) -> dict: ...

    @abc.abstractmethod
    def decode_latents(self, state, latents: dict, plan=None) -> dict: ...

    @abc.abstractmethod
    def condition(self, features, styles: tuple, speech=None, threshold=None, plan=None): ...

    @abc.abstractmethod
    def denoise(self, x, t: float, cond, style, known, mask): ...

    def decode(self, state, codes: dict, plan=None) -> dict:
        tensors = self.checkpoint.tensors
        return self.decode_latents(state, {p: tensors[f"vq.{p}.codebook.weight"][np.asarray(c, np.int64)]
                                           for p, c in codes.items()}, plan)

    def describe(self) -> str:
        return f"{self.name} on {self.device}"


def checked_parts(parts) -> tuple:
    """The parts (in ``PARTS`` order) an engine was given, or EngineError naming what is wrong."""
    try:
        return ordered_parts(parts)
    except ValueError as error:
        raise EngineError(str(error)) from None


def checked_window(length: int, config) -> int:
    """The number of codes of a window of ``length`` speech states (whole codes plus the
    look-ahead), or EngineError."""
    r, look = config.frames_per_code, config.lookahead
    n = (length - look) // r
    if n < 1 or n * r + look != length:
        raise EngineError(f"{length} speech states are not whole codes of {r} frames plus the look-ahead of {look}")
    return n


def checked_speech_window(speech, config) -> int:
    """The number of codes of the speech states ``speech`` of a window (n r + L, speech_width), or
    EngineError naming what does not fit."""
    shape = np.shape(speech)
    if len(shape) != 2 or shape[1] != config.speech_width:
        raise EngineError(f"speech states of shape {shape} do not fit this model's width {config.speech_width}: "
                          "pass what the engine's speech() returned")
    return checked_window(shape[0], config)


def checked_context(context, known: dict, styles: tuple, config) -> int:
    """The number of codes of a window's ``context`` (len(styles), n, d) and ``known`` codes, or
    EngineError naming what does not fit."""
    shape = getattr(context, "shape", ())
    if len(shape) != 3 or shape[0] != len(styles) or shape[2] != config.d_model:
        raise EngineError(f"a context of shape {tuple(shape)} does not fit {len(styles)} styles of width "
                          f"{config.d_model}: pass what the engine's context() returned")
    n = int(shape[1])
    for part, codes in known.items():
        if codes is not None and len(codes) != n:
            raise EngineError(f"known codes of '{part}' cover {len(codes)} codes, the span has {n}")
    return n


def checked_family(checkpoint, family: str, method: str) -> None:
    """EngineError unless ``checkpoint`` is of ``family`` (what ``method`` of the contract needs)."""
    if checkpoint.config.family != family:
        raise EngineError(f"{method}() needs a '{family}' checkpoint, '{checkpoint.path}' is "
                          f"'{checkpoint.config.family}'")


def checked_speech_family(checkpoint) -> None:
    """EngineError unless ``checkpoint`` streams speech states (``speech``): a vq-mamba one, or a
    dim-gestor one with a stroke planner."""
    config = checkpoint.config
    if config.family != "vq-mamba" and not config.stroke_planner:
        raise EngineError(f"speech() needs a 'vq-mamba' checkpoint or one with a stroke planner, '{checkpoint.path}' "
                          f"is '{config.family}' without one")


def checked_planner_speech(speech, features, config):
    """The window's planner states ``speech`` that ``condition`` needs (None without a planner),
    or EngineError naming what does not fit the window's ``features``."""
    if not config.stroke_planner:
        if speech is not None:
            raise EngineError("condition() got speech states, and this model has no stroke planner: pass None")
        return None
    if speech is None or np.shape(speech) != (len(features), config.d_model):
        raise EngineError(f"condition() needs the window's planner states ({len(features)}, {config.d_model}) from "
                          f"speech(), got {None if speech is None else np.shape(speech)}")
    return speech


def checked_given_plan(plan, features, config):
    """``condition``'s given ``plan`` as float32 (None: none given), or EngineError unless the
    model has a stroke planner and the plan covers the window's frames."""
    if plan is None:
        return None
    frames = len(features) - config.lookahead
    if not config.stroke_planner or np.shape(plan) != (frames,):
        raise EngineError(f"condition() reads a given plan ({frames},) of the window's frames, on a model with a "
                          f"stroke planner only; got {np.shape(plan)}{'' if config.stroke_planner else ' (no planner)'}")
    return np.asarray(plan, np.float32)


def checked_denoise(x, cond, style, known, mask, config) -> None:
    """EngineError unless ``denoise``'s arrays fit each other and ``config``."""
    b, n, c = np.shape(x) if np.ndim(x) == 3 else (0, 0, 0)
    fits = (c == config.latent_dim and b >= 1 and np.shape(cond) == (n, config.d_model)
            and np.shape(style) == (b, config.d_model) and np.shape(known) == (n, c)
            and np.shape(mask) == (n, config.latent_dim // config.code_dim))
    if not fits:
        raise EngineError(f"denoise() got x {np.shape(x)}, cond {np.shape(cond)}, style {np.shape(style)}, known "
                          f"{np.shape(known)}, mask {np.shape(mask)}: pass what condition() returned and latents of "
                          f"width {config.latent_dim}")


def checked_styles(num_styles: int, styles) -> tuple:
    """Style indices (None: the mean style) an engine's ``context`` or ``span`` was given, or EngineError."""
    for style in styles:
        if style is not None and not 0 <= int(style) < num_styles:
            raise EngineError(f"style index {style} is out of range for this model")
    return tuple(None if s is None else int(s) for s in styles)


def checked_plans(plans, styles: tuple) -> tuple | None:
    """Which rows of a ``context`` read the stroke plan (None: all), as a tuple of bools one per
    style, or EngineError."""
    if plans is None:
        return None
    plans = tuple(plans)
    if len(plans) != len(styles) or not all(isinstance(p, (bool, np.bool_)) for p in plans):
        raise EngineError(f"plans must be one True or False per style ({len(styles)}), got {plans!r}")
    return tuple(bool(p) for p in plans)


def checked_style_strength(strength) -> float:
    """A ``span``'s style strength as a float, or EngineError unless it is a finite number >= 0."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value) or value < 0:
        raise EngineError(f"style strength must be a finite number >= 0, got {strength!r}")
    return value


def checked_plan(plan, latents: dict, config) -> np.ndarray | None:
    """The stroke plan (n r,) float32 a ``decode_latents`` call was given for its frames (None: no
    apexes), or EngineError when its length is not the latents' frames."""
    if plan is None:
        return None
    plan = np.asarray(plan, np.float32)
    frames = {len(v) * config.frames_per_code for v in latents.values()}
    if plan.ndim != 1 or (frames and frames != {len(plan)}):
        raise EngineError(f"the stroke plan must give one value per decoded frame {sorted(frames)}, got shape {plan.shape}")
    return plan


class RequestEngine(abc.ABC):
    """An engine that runs a whole request elsewhere (the external worker runs this same pipeline
    in another interpreter); ``pipeline.generate`` hands it the request instead of stepping it."""

    name = "request engine"

    @abc.abstractmethod
    def run(self, request, *, checkpoint=None, progress=None, cancel=None):
        """The ``Motion`` of ``request`` (a ``pipeline.GenerationRequest``), like ``pipeline.generate``:
        ``progress(fraction, message)``, ``cancel() -> bool``; raises ``Cancelled`` or ``GenerationError``."""

    def describe(self) -> str:
        return self.name
