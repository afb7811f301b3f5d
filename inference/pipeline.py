"""Speech in, SMPL-X motion out: the generation pipeline (numpy; the network runs in an engine).

``generate(request)`` turns an audio file or array into a 30 fps ``Motion``;
``GenerationStream`` does the same for audio that arrives in pieces (``push_audio`` returns the
frames that became final, ``finish`` the rest). Both run the identical block schedule, so a
streamed clip equals the whole-clip result exactly.

Per motion frame t the engine's local scans see the previous frame's codes of all parts, and the
speech context of audio frame ``t + lookahead`` (the model's fixed look-ahead, 200 ms for
``small``): a stream's output lags its input by that look-ahead plus up to one motion block
(32 frames) and one context block (16 frames), under 2 s in all.
Codes are drawn per part with the request's seed and temperature (``sampling.py``). Style
strength other than 1 runs a second, speaker-neutral stream (the mean style) beside the styled one,
fed the same previous codes, and moves the logits away from its own (``sampling.guided_logits``):
the network runs twice per frame. Parts that are switched off are not generated and keep the
start pose (or the rest pose). A start pose fixes
the first ``config.seed_frames`` codes of each generated part (the encoded pose) and the root
position the motion starts from.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..rigs.motion import Motion
from ..rigs.skeleton import FPS, PARTS, ordered_parts
from . import parts as parts_module
from .audio import AudioError, SAMPLE_RATE, load_audio, prepare_waveform
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .engines.base import RequestEngine
from .engines.registry import resolve_engine
from .errors import Cancelled, EngineError, GenerationError
from .features import FEATURE_DIM, FeatureStream, num_frames
from .sampling import DEFAULT_STYLE_STRENGTH, DEFAULT_TEMPERATURE, check_sampling, guided_logits, part_rngs, sample_code

BLOCK = 32  # motion frames per decode call; the unit of progress and cancel checks
CONTEXT_BLOCK = 16  # audio frames per context call


@dataclass
class GenerationRequest:
    audio: object  # path (str / PathLike) or a mono float32 16 kHz numpy array; unused by a stream (push_audio)
    style: str | None = None  # a style name of the checkpoint; None = its first style
    seed: int = 0
    temperature: float = DEFAULT_TEMPERATURE  # 0 = always the most likely code (deterministic)
    style_strength: float = DEFAULT_STYLE_STRENGTH  # 0 = no particular speaker, 1 = as learnt, more exaggerates
    top_k: int | None = None
    top_p: float | None = None
    parts: tuple = PARTS  # the parts to generate; the others keep the start pose or the rest pose
    start_pose: Motion | None = None  # its first frame starts the motion
    device: str = "auto"

    def __post_init__(self) -> None:
        # The parts are checked and put in model order here, once, for every caller.
        try:
            self.parts = ordered_parts(self.parts)
        except (TypeError, ValueError) as error:
            raise GenerationError(str(error)) from None


def resolve_checkpoint(checkpoint=None) -> Checkpoint:
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    return load_checkpoint(checkpoint)


def request_audio(audio) -> np.ndarray:
    """The request's audio as mono float32 at 16 kHz (arrays are taken to be 16 kHz already)."""
    if isinstance(audio, (str, os.PathLike)):
        return load_audio(audio)
    if isinstance(audio, np.ndarray):
        return prepare_waveform(audio, SAMPLE_RATE, source="The audio array")
    raise AudioError(f"audio must be a file path or a numpy array, got {type(audio).__name__}")


def check_settings(checkpoint: Checkpoint, *, style: str | None = None, temperature: float = DEFAULT_TEMPERATURE,
                   top_k: int | None = None, top_p: float | None = None,
                   style_strength: float = DEFAULT_STYLE_STRENGTH) -> int:
    """Check a request's settings against ``checkpoint`` before any audio is read and return the
    style's index; GenerationError names the setting and its range. Front ends call it once
    before a batch; ``GenerationStream`` calls it for every clip. (Parts are checked when a
    ``GenerationRequest`` is made.)"""
    try:
        check_sampling(float(temperature), top_k, top_p, float(style_strength))
        return checkpoint.style_index(style)
    except (ValueError, CheckpointError) as error:
        raise GenerationError(str(error)) from None


class GenerationStream:
    """Incremental generation with carried state. ``push_audio(samples)`` (mono float32 16 kHz)
    returns a ``Motion`` of the newly final frames or None; ``finish()`` returns the rest.

    ``request`` holds the settings (style, seed, sampling, parts, start pose); its ``audio`` is not
    read here, the audio arrives through ``push_audio``."""

    def __init__(self, engine, checkpoint: Checkpoint, request: GenerationRequest, *, on_block=None):
        style, seed, parts, start_pose = request.style, request.seed, request.parts, request.start_pose
        temperature, top_k, top_p = request.temperature, request.top_k, request.top_p
        style_strength = request.style_strength
        style_index = check_settings(checkpoint, style=style, temperature=temperature, top_k=top_k, top_p=top_p,
                                     style_strength=style_strength)
        self.engine = engine
        self.checkpoint = checkpoint
        self.config = checkpoint.config
        self.parts = parts  # checked and ordered by GenerationRequest
        self.temperature, self.top_k, self.top_p = float(temperature), top_k, top_p
        self.style_strength = float(style_strength)
        self.on_block = on_block or (lambda frames_done: None)
        stats = checkpoint.stats
        self._audio_mean, self._audio_std = stats["audio_mean"], stats["audio_std"]
        self._stats = stats
        self._rngs = part_rngs(seed, self.parts)
        self._features = FeatureStream()
        self._pending = np.zeros((0, FEATURE_DIM), np.float32)  # normalised features awaiting context
        self._states = []  # the styled stream, then the neutral one when style strength needs it
        self._context_start = 0  # audio frame of self._context[0]
        self._context_end = 0  # audio frames with context so far
        self._frame = 0  # next motion frame
        self._total = None  # motion frames, known at finish()
        self._prev = {p: None for p in PARTS}
        self._finished = False
        try:
            engine.prepare(checkpoint)
            self._states.append(engine.start(style_index, self.parts))
            # With one style the mean style is that style: nothing to contrast.
            if self.style_strength != 1.0 and self.config.num_styles > 1 and self.parts:
                self._states.append(engine.start(None, self.parts))
        except EngineError as error:
            raise GenerationError(str(error)) from None
        # (rows, streams, d_model): the context rows still needed, per stream
        self._context = np.zeros((0, len(self._states), self.config.d_model), np.float32)
        self._base_pose, self._seed_codes, self._prev_trans = self._start_pose(start_pose)

    # --- start pose -------------------------------------------------------------------------
    def _start_pose(self, start_pose):
        if start_pose is None:
            return Motion.rest(1), {}, None
        if not isinstance(start_pose, Motion) or start_pose.num_frames < 1:
            raise GenerationError("start_pose must be a Motion with at least one frame")
        first = Motion(start_pose.poses[:1], start_pose.trans[:1], start_pose.expressions[:1], FPS, start_pose.betas)
        seeds = {}
        n = self.config.seed_frames
        if n and self.parts:
            held = Motion(np.repeat(first.poses, n, 0), np.repeat(first.trans, n, 0),
                          np.repeat(first.expressions, n, 0), FPS, first.betas)
            features = parts_module.normalize(parts_module.motion_to_parts(held), self._stats)
            seeds = {p: np.asarray(self.engine.encode(p, features[p]), np.int64) for p in self.parts}
        return first, seeds, first.trans[0]

    # --- public API -------------------------------------------------------------------------
    @property
    def frames_done(self) -> int:
        return self._frame

    def push_audio(self, samples) -> Motion | None:
        if self._finished:
            raise GenerationError("push_audio after finish: start a new stream")
        samples = np.asarray(samples, np.float32).reshape(-1)
        if not np.isfinite(samples).all():
            raise AudioError("The audio contains NaN or infinite samples: re-export it")
        self._add_features(self._features.push(samples))
        return self._advance(final=False)

    def finish(self) -> Motion | None:
        if self._finished:
            raise GenerationError("finish called twice")
        self._finished = True
        self._add_features(self._features.finish())
        self._total = num_frames(self._features.samples_received)
        if self._total == 0:
            raise GenerationError("The audio is shorter than one motion frame (1/30 s): give a longer clip")
        # Beyond the end the model hears "silence": zeros in normalised feature space.
        self._add_features(np.zeros((self.config.lookahead, FEATURE_DIM), np.float32))
        return self._advance(final=True)

    # --- internals --------------------------------------------------------------------------
    def _add_features(self, features: np.ndarray) -> None:
        if len(features):
            normalised = ((features - self._audio_mean) / self._audio_std).astype(np.float32)
            self._pending = np.concatenate([self._pending, normalised])

    def _advance(self, final: bool) -> Motion | None:
        lookahead = self.config.lookahead
        pieces = []
        while True:
            if final:
                if self._frame >= self._total:
                    break
                stop = min(self._frame + BLOCK, self._total)
            else:
                stop = self._frame + BLOCK
            need = stop + lookahead  # motion frame t reads the context of audio frame t + lookahead
            while self._context_end < need:
                # Context in blocks of CONTEXT_BLOCK audio frames at absolute positions (the last shorter).
                if len(self._pending) >= CONTEXT_BLOCK:
                    take = CONTEXT_BLOCK
                elif final and len(self._pending):
                    take = len(self._pending)
                else:
                    break
                block = self._pending[:take]
                context = np.stack([np.asarray(self.engine.context(s, block), np.float32) for s in self._states], 1)
                self._pending = self._pending[take:]
                self._context = np.concatenate([self._context, context])
                self._context_end += take
            if self._context_end < need:
                break  # wait for more audio
            pieces.append(self._generate_block(self._frame, stop))
            self._frame = stop
            self.on_block(self._frame)
        if not pieces:
            return None
        return Motion.join(pieces)

    def _generate_block(self, first: int, stop: int) -> Motion:
        lookahead = self.config.lookahead
        n = stop - first
        codes = {p: np.zeros(n, np.int64) for p in self.parts}
        if self.parts:
            for t in range(first, stop):
                context = self._context[t + lookahead - self._context_start]
                logits = self.engine.step(self._states[0], context[0], self._prev)
                if len(self._states) > 1:
                    neutral = self.engine.step(self._states[1], context[1], self._prev)
                    logits = {p: guided_logits(logits[p], neutral[p], self.style_strength) for p in logits}
                for part in self.parts:
                    seed = self._seed_codes.get(part)
                    if seed is not None and t < len(seed):
                        code = int(seed[t])
                    else:
                        code = sample_code(logits[part], self._rngs[part], self.temperature, self.top_k, self.top_p)
                    codes[part][t - first] = code
                    self._prev[part] = code
        # Context rows before the next block's first look-ahead frame are no longer needed.
        drop = stop + lookahead - self._context_start
        drop = max(0, min(drop, len(self._context)))
        self._context = self._context[drop:]
        self._context_start += drop
        features = self.engine.decode(self._states[0], codes) if self.parts else {}
        features = parts_module.denormalize(features, self._stats)
        base = self._base_pose
        base = Motion(np.repeat(base.poses, n, 0), np.repeat(base.trans, n, 0), np.repeat(base.expressions, n, 0),
                      FPS, base.betas)
        motion = parts_module.parts_to_motion(features, FPS, base=base, previous_trans=self._prev_trans)
        if "lower" in self.parts:
            self._prev_trans = motion.trans[-1]
        return motion


def generate(request: GenerationRequest, *, checkpoint=None, engine="auto", progress=None, cancel=None) -> Motion:
    """Generate the whole clip of ``request``. ``checkpoint``: path, ``Checkpoint`` or None (the
    bundled model); ``engine``: a name for ``engines.resolve_engine`` or an engine object;
    ``progress(fraction, message)``; ``cancel() -> bool`` (raises ``Cancelled``)."""
    progress = progress or (lambda fraction, message: None)
    cancel = cancel or (lambda: False)
    if isinstance(engine, str):
        try:
            engine = resolve_engine(engine, request.device)
        except EngineError as error:
            raise GenerationError(str(error)) from None
    if isinstance(engine, RequestEngine):
        # A whole-request engine (the external worker): it runs this same pipeline elsewhere.
        return engine.run(request, checkpoint=checkpoint, progress=progress, cancel=cancel)
    progress(0.0, "Loading the model")
    checkpoint = resolve_checkpoint(checkpoint)
    progress(0.0, "Reading the audio")
    audio = request_audio(request.audio)
    total = num_frames(len(audio))
    if cancel():
        raise Cancelled("generation cancelled")

    def on_block(frames_done: int) -> None:
        progress(frames_done / total, f"Generated {frames_done / FPS:.1f} s of {total / FPS:.1f} s")
        if cancel():
            raise Cancelled("generation cancelled")

    stream = GenerationStream(engine, checkpoint, request, on_block=on_block)
    # Pushed in pieces so that the stream never copies the whole recording at once.
    piece = 30 * SAMPLE_RATE
    pieces = [stream.push_audio(audio[i:i + piece]) for i in range(0, len(audio), piece)] + [stream.finish()]
    pieces = [m for m in pieces if m is not None]
    motion = Motion.join(pieces)
    progress(1.0, "Done")
    return motion
