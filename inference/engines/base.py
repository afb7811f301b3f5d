"""The engine contract: what the pipeline asks of a model (``Engine``), and of a whole-request engine.

The pipeline (``pipeline.py``, numpy only) does everything that is not the network: audio
loading, features and their normalisation, the frame loop, sampling, seeds, part toggles, start
pose, turning part features back into motion. It asks an engine for five things, all numpy in and
out (float32 arrays, int64 codes), with the recurrent state kept by the engine in an opaque
object returned by ``start``:

``prepare(checkpoint)``
    Load the weights of a ``checkpoint.Checkpoint`` (stage "full"); called before each request,
    so cache by checkpoint.
``encode(part, features (n, PART_DIMS[part])) -> codes (n,) int64``
    VQ-VAE encoder + nearest code of normalised part features, from zero history (start poses).
``start(style: int | None, parts: tuple[str]) -> state``
    A new stream: zero conv and scan states everywhere; ``parts`` are the generated parts.
    ``style`` None: the mean of the style embeddings (the speaker-neutral stream of style strength).
``context(state, features (n, F)) -> (n, d_model)``
    Speech encoder + style + global scan over the next ``n`` normalised feature frames
    (``Generator.context``), advancing the state. Context row ``j`` belongs to audio frame ``j``;
    the pipeline gives motion frame ``t`` the context of frame ``t + config.lookahead``.
``step(state, context (d_model,), prev_codes: {part: int | None}) -> {part: logits (K,)}``
    One frame of the local scans (``Generator.local_step``) for the generated parts. The
    previous latents are the codebook rows of ``prev_codes`` (all four parts; ``None`` =
    ``mask_latent``: frame 0, parts switched off). Advances the state.
``decode(state, codes: {part: (n,) int}) -> {part: (n, PART_DIMS[part])}``
    VQ decoders with carried causal-conv state (normalised part features). For "lower" the root
    channels ``[54:57]`` are replaced by the global motion predictor's output on the decoded
    lower body (its own carried state), as MambaTalk recovers translation.

The pipeline calls these in fixed blocks of frames at absolute positions, so whole-clip and
streamed generation do the same arithmetic. ``TorchEngine`` (``engines/torch.py``) implements them
with ``torch_model``; ``NumpyEngine`` (``engines/numpy.py``) mirrors the same module tree
(``architecture.py``) in numpy. The external engine is different: it runs a whole request in
another interpreter (``engines/external.py``), so it is a ``RequestEngine``: the pipeline hands it
the request. Which engine runs is chosen in ``engines/registry.py``.
"""
from __future__ import annotations

import abc

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
    def start(self, style: int | None, parts: tuple): ...

    @abc.abstractmethod
    def context(self, state, features): ...

    @abc.abstractmethod
    def step(self, state, context, prev_codes: dict) -> dict: ...

    @abc.abstractmethod
    def decode(self, state, codes: dict) -> dict: ...

    def describe(self) -> str:
        return f"{self.name} on {self.device}"


def checked_start(num_styles: int, style: int | None, parts) -> tuple[int | None, tuple]:
    """The style index (None: the mean style) and the parts (in ``PARTS`` order) an engine's
    ``start`` was given, or EngineError naming what is wrong."""
    if style is not None and not 0 <= int(style) < num_styles:
        raise EngineError(f"style index {style} is out of range for this model")
    try:
        parts = ordered_parts(parts)
    except ValueError as error:
        raise EngineError(str(error)) from None
    return (None if style is None else int(style)), parts


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
