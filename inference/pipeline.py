"""Speech in, SMPL-X motion out: the generation pipeline (numpy; the network runs in an engine).

``generate(request)`` turns an audio file or array into a 30 fps ``Motion``;
``GenerationStream`` does the same for audio that arrives in pieces (``push_audio`` returns the
frames that became final, ``finish`` the rest). Both run the identical schedule at absolute
positions, so a streamed clip equals the whole-clip result exactly.

The clip is generated in spans of ``span_codes`` codes (64 frames, 2.1 s, for ``small``). A span
reads the previous span's last ``config.generation_prefix`` codes as fixed and the speech up to the model's
look-ahead (1 s) beyond its last frame, and is filled in ``PASSES`` parallel passes, each fixing
the most confident of the codes still open (MaskGIT's cosine schedule, ``sampling.still_hidden``).
A stream's output therefore lags its input by one span plus the speech look-ahead plus up to
one feature block and one speech block (16 frames each), plus the decoders' look-ahead
(``config.decoder_lookahead``, ``decoder_delay.py``; 2 frames in the bundled model): up to 128
frames, 4.3 s, for the bundled ``small`` model.
Codes are drawn per part with the request's seed and temperature (``sampling.py``), except
that a code in a pause of about a second or more is the most likely one (``pauses.py``). Style
strength moves the speaker embedding the span generator hears away from the mean style; plan
strength other than 1 runs the chosen style with an empty stroke plan beside it in the same
engine call and moves the logits away from that row's, except in a window with nothing planned,
where the two rows would be the same (both classifier-free guidance, ``sampling.guided``). A
checkpoint that gives its styles' stroke rates plans each window at the threshold that keeps the voice at its style's rate of
strokes, judged on the windows so far (``stroke_plan.StrokeRate``). When the motion so far ends
with an arm raised and still for ``frozen_arms.LET_GO_S`` s, the next span carries no upper-body
or hand codes (a diffusion model's window, none of their latents), so that the arms start afresh from the
speech (``frozen_arms.py``). Parts that
are switched off are not generated (the others see them as unknown) and keep the start pose (or
the rest pose). A start pose fixes the clip's first ``START_POSE_CODES`` codes of each generated
part (the encoded pose) and the root position the motion starts from.
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
from .decoder_delay import DecoderDelay
from .diffusion import PLAN_GUIDANCE_TIME, alpha_bar, ddim_step, sampling_times
from .engines.base import RequestEngine
from .engines.registry import resolve_engine
from .errors import Cancelled, EngineError, GenerationError
from .features import FeatureStream, energy_db, normalize, num_frames
from .frozen_arms import ARM_PARTS, FrozenArmWatch
from .sampling import (
    DEFAULT_PLAN_STRENGTH, DEFAULT_STYLE_STRENGTH, DEFAULT_TEMPERATURE, PASSES, check_sampling,
    check_seed, guided, part_rngs, sample_codes, still_hidden,
)
from .pauses import PAUSE_MARGIN, pause_codes
from .stroke_plan import StrokeRate, spoken_frames, window_frames

CONTEXT_BLOCK = 16  # audio frames per speech-encoder call
START_POSE_CODES = 1  # codes a start pose fixes at the beginning of a clip (4 frames at 4 frames per code)


@dataclass
class GenerationRequest:
    audio: object  # path (str / PathLike) or a mono float32 16 kHz numpy array; unused by a stream (push_audio)
    style: str | None = None  # a style name of the checkpoint; None = its default (config.default_style)
    seed: int = 0
    temperature: float = DEFAULT_TEMPERATURE  # 0 = always the most likely code (deterministic)
    style_strength: float = DEFAULT_STYLE_STRENGTH  # 0 = no particular speaker, 1 = as learnt, more exaggerates
    plan_strength: float = DEFAULT_PLAN_STRENGTH  # models with a plan: 0 = ignore it, 1 = as learnt, more follows it
    top_k: int | None = None
    top_p: float | None = None
    parts: tuple = PARTS  # the parts to generate; the others keep the start pose or the rest pose
    start_pose: Motion | None = None  # its first frame starts the motion; None: the pose the training clips start in
    device: str = "auto"
    sampling_steps: int | None = None  # DDIM steps of a dim-gestor model; None = the checkpoint's own

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


MAX_SAMPLING_STEPS = 1000  # a bound that keeps a slip (10000) from running for hours; 25 and 50 steps measure alike


def check_settings(checkpoint: Checkpoint, *, seed: int = 0, style: str | None = None,
                   temperature: float = DEFAULT_TEMPERATURE,
                   top_k: int | None = None, top_p: float | None = None,
                   style_strength: float = DEFAULT_STYLE_STRENGTH, plan_strength: float = DEFAULT_PLAN_STRENGTH,
                   sampling_steps: int | None = None) -> int:
    """Check a request's settings against ``checkpoint`` before any audio is read and return the
    style's index; GenerationError names the setting and its range. Front ends call it once
    before a batch; ``GenerationStream`` calls it for every clip. (Parts are checked when a
    ``GenerationRequest`` is made.)"""
    if sampling_steps is not None:
        if checkpoint.config.family != "dim-gestor":
            raise GenerationError(f"sampling steps apply to a diffusion (dim-gestor) model, and this one is "
                                  f"{checkpoint.config.family}: leave them out")
        if isinstance(sampling_steps, bool) or not isinstance(sampling_steps, (int, np.integer)) \
                or not 1 <= sampling_steps <= MAX_SAMPLING_STEPS:
            raise GenerationError(f"sampling steps must be a whole number from 1 to {MAX_SAMPLING_STEPS}, "
                                  f"got {sampling_steps!r}")
    try:
        check_seed(seed)
        check_sampling(float(temperature), top_k, top_p, float(style_strength), float(plan_strength))
        return checkpoint.style_index(style)
    except (ValueError, CheckpointError) as error:
        raise GenerationError(str(error)) from None


def _last(rows: np.ndarray, n: int) -> np.ndarray:
    """The last ``n`` rows (none for n = 0, where ``rows[-0:]`` would keep them all)."""
    return rows[max(len(rows) - n, 0):]


def _from_frame(rows: np.ndarray, first: int, frame: int) -> tuple[np.ndarray, int]:
    """Per-frame ``rows`` starting at frame ``first`` without those before ``frame``, and their
    new first frame."""
    drop = max(0, min(frame - first, len(rows)))
    return rows[drop:], first + drop


class GenerationStream:
    """Incremental generation with carried state. ``push_audio(samples)`` (mono float32 16 kHz)
    returns a ``Motion`` of the newly final frames or None; ``finish()`` returns the rest.

    ``request`` holds the settings (style, seed, sampling, parts, start pose); its ``audio`` is not
    read here, the audio arrives through ``push_audio``."""

    def __init__(self, engine, checkpoint: Checkpoint, request: GenerationRequest, *, on_block=None):
        style_index = check_settings(checkpoint, seed=request.seed, style=request.style, temperature=request.temperature,
                                     top_k=request.top_k, top_p=request.top_p, style_strength=request.style_strength,
                                     plan_strength=request.plan_strength, sampling_steps=request.sampling_steps)
        self.engine = engine
        self.checkpoint = checkpoint
        config = self.config = checkpoint.config
        self.parts = request.parts  # checked and ordered by GenerationRequest
        self.temperature, self.top_k, self.top_p = float(request.temperature), request.top_k, request.top_p
        self.style_strength = float(request.style_strength)
        self.plan_strength = float(request.plan_strength)
        self.on_block = on_block or (lambda frames_done: None)
        self._r, self._span, self._prefix, self._lookahead = (config.frames_per_code, config.span_codes,
                                                             config.generation_prefix, config.lookahead)
        self._rngs = part_rngs(request.seed, self.parts)
        # The engine's rows: the styled one, whose speaker embedding style strength moves from the
        # mean, and the same with an empty stroke plan when plan strength needs it (both through
        # sampling.guided). At style strength 0 the stroke planner hears the mean style too, so
        # every style moves alike.
        style_index = None if self.style_strength == 0.0 else style_index
        self._styles, self._plans = (style_index,), None
        if self.plan_strength != 1.0:
            self._styles, self._plans = (style_index, style_index), (True, False)
        self._features = FeatureStream(pitch=config.planner_pitch)
        self._pauses = np.zeros(0, bool)  # whether each audio frame from _heard_start on is a pause (not speech)
        self._loudest = -np.inf  # dB, of all the audio so far
        self._heard_start = 0
        self._pause_margin = min(PAUSE_MARGIN, self._lookahead)  # a window hears no further
        self._stroke_rate = StrokeRate.for_style(config, self._styles[0]) if config.family == "vq-mamba" else None
        self._pending = np.zeros((0, config.input_width), np.float32)  # normalised features awaiting the speech encoder
        self._speech = np.zeros((0, config.speech_width), np.float32)  # speech states still needed
        self._speech_start = 0  # audio frame of self._speech[0]
        self._speech_end = 0  # audio frames encoded so far
        self._code = 0  # next code to generate
        self._total_frames = None  # known at finish()
        self._history = {p: np.zeros(0, np.int64) for p in self.parts}  # the last carried codes
        # Only a generated upper body moves the arms: with it switched off they keep their pose.
        self._frozen_arms = FrozenArmWatch() if "upper" in self.parts else None
        self._delay = DecoderDelay({p: config.decoder_lookahead[p] for p in self.parts})
        self._last_decoded = {}  # the last span's codes (latents) per part, for the decoders' tail
        self._emitted = 0  # frames returned so far
        self._finished = False
        try:
            engine.prepare(checkpoint)  # refuses a stage-1 checkpoint, which has no audio statistics
            self._state = engine.start(self.parts)
        except EngineError as error:
            raise GenerationError(str(error)) from None
        stats = self._stats = checkpoint.stats
        self._audio_mean, self._audio_std = stats["audio_mean"], stats["audio_std"]
        self._base_pose, self._seed_codes, self._prev_trans = self._start_pose(request.start_pose)

    # --- start pose -------------------------------------------------------------------------
    def _start_pose(self, start_pose):
        """(base pose, start codes per switched-on part, the root's previous translation). No start
        pose: the rest pose for switched-off parts, and the parts start in the pose the training
        clips start in (``dataset.start_frame``) where the checkpoint has it, as the data does: a
        model that starts anywhere holds an arm up through its first seconds."""
        if start_pose is None:
            if "start_pose" not in self._stats:
                return Motion.rest(1), {}, None
            data_start = Motion(self._stats["start_pose"].reshape(1, -1, 3), np.zeros((1, 3), np.float32),
                                self._stats["start_expressions"][None], FPS)
            return Motion.rest(1), self._start_codes(data_start), None
        if not isinstance(start_pose, Motion) or start_pose.num_frames < 1:
            raise GenerationError("start_pose must be a Motion with at least one frame")
        first = Motion(start_pose.poses[:1], start_pose.trans[:1], start_pose.expressions[:1], FPS, start_pose.betas)
        return first, self._start_codes(first), first.trans[0]

    def _start_codes(self, first: Motion) -> dict:
        """The codes of ``first`` (one frame) held for ``START_POSE_CODES`` codes, per switched-on part."""
        if not self.parts:
            return {}
        n = START_POSE_CODES * self._r
        held = Motion(np.repeat(first.poses, n, 0), np.repeat(first.trans, n, 0),
                      np.repeat(first.expressions, n, 0), FPS, first.betas)
        features = parts_module.normalize(parts_module.motion_to_parts(held), self._stats)
        return {p: np.asarray(self.engine.encode(p, features[p]), np.int64) for p in self.parts}

    # --- public API -------------------------------------------------------------------------
    @property
    def frames_done(self) -> int:
        return min(self._code * self._r, self._total_frames if self._total_frames is not None else np.inf)

    def push_audio(self, samples) -> Motion | None:
        if self._finished:
            raise GenerationError("push_audio after finish: start a new stream")
        samples = np.asarray(samples, np.float32).reshape(-1)
        if not np.isfinite(samples).all():
            raise AudioError("The audio contains NaN or infinite samples: re-export it")
        self._hear(self._features.push(samples))
        return self._advance(final=False)

    def finish(self) -> Motion | None:
        if self._finished:
            raise GenerationError("finish called twice")
        self._finished = True
        self._hear(self._features.finish())
        self._total_frames = num_frames(self._features.samples_received)
        if self._total_frames == 0:
            raise GenerationError("The audio is shorter than one motion frame (1/30 s): give a longer clip")
        # Beyond the end the model hears zeros in normalised feature space (the corpus' mean
        # frame), up to the look-ahead of the last (possibly partial) code: what training pads
        # its windows with (``train_generator.window_features``).
        self._pending = np.concatenate([self._pending, np.zeros((self._lookahead + self._r, self.config.input_width),
                                                                np.float32)])
        return self._advance(final=True)

    # --- internals --------------------------------------------------------------------------
    def _hear(self, features: np.ndarray) -> None:
        """The audio's own feature frames, not normalised."""
        if len(features):
            spoken, self._loudest = spoken_frames(energy_db(features), self._loudest)
            self._pauses = np.concatenate([self._pauses, ~spoken])
            self._pending = np.concatenate([self._pending, normalize(features, self._audio_mean, self._audio_std)])

    def _encode_speech(self, need: int, final: bool) -> bool:
        """Run the speech encoder until audio frame ``need`` (exclusive) is encoded, in blocks of
        CONTEXT_BLOCK frames at absolute positions (the last one shorter); False while waiting for audio."""
        while self._speech_end < need:
            if len(self._pending) >= CONTEXT_BLOCK:
                take = CONTEXT_BLOCK
            elif final and len(self._pending):
                take = len(self._pending)
            else:
                return False
            states = np.asarray(self.engine.speech(self._state, self._pending[:take]), np.float32)
            self._pending = self._pending[take:]
            self._speech = np.concatenate([self._speech, states])
            self._speech_end += take
        return True

    def _advance(self, final: bool) -> Motion | None:
        r, look = self._r, self._lookahead
        total_codes = -(-self._total_frames // r) if final else None
        pieces = []
        while total_codes is None or self._code < total_codes:
            first = self._code
            stop = first + self._span if total_codes is None else min(first + self._span, total_codes)
            if not self._encode_speech(stop * r + look, final):
                break  # wait for more audio
            pieces.append(self._generate_span(first, stop))
            self._let_frozen_arms_go(pieces[-1])
            self._code = stop
            self.on_block(self.frames_done)
        if final and self._delay.frames:
            pieces.append(self._decoded_tail())
        if not pieces:
            return None
        motion = Motion.join(pieces)
        self._emitted += motion.num_frames
        if final:  # the last code (and the decoders' tail) may reach past the audio's end
            keep = motion.num_frames - (self._emitted - self._total_frames)
            motion = Motion(motion.poses[:keep], motion.trans[:keep], motion.expressions[:keep], FPS, motion.betas)
        return motion

    def _window_codes(self, first: int, stop: int) -> tuple[int, dict]:
        """The window's first code and every part's known codes over it (-1 = to generate): the
        previous span's last ``generation_prefix`` codes, then the span (the start pose fixes the clip's
        first codes); switched-off parts are unknown throughout."""
        start = max(first - self._prefix, 0)
        n = stop - start
        known = {}
        for part in PARTS:
            codes = np.full(n, -1, np.int64)
            if part in self.parts:
                history = self._history[part][len(self._history[part]) - (first - start):]
                codes[:len(history)] = history
                seed = self._seed_codes.get(part)
                if seed is not None and first < len(seed):
                    fixed = seed[first:stop]
                    codes[first - start:first - start + len(fixed)] = fixed
            known[part] = codes
        return start, known

    def _generate_span(self, first: int, stop: int) -> Motion:
        r, look = self._r, self._lookahead
        start, known = self._window_codes(first, stop)
        if self.parts:
            speech = self._speech[start * r - self._speech_start:stop * r + look - self._speech_start]
            hidden = {p: int(np.sum(known[p] < 0)) for p in self.parts}
            context, plan = self.engine.context(speech, self._styles, self._plans,
                                                self._plan_threshold(first, start, stop))
            # A window with nothing planned (a pause, sparse speech): the empty-plan row would hear
            # what the styled row hears, and the guidance would change no logit.
            rows = len(self._styles) if plan[0].any() else 1
            temperature = np.where(self._pause_codes(start, stop), 0.0, self.temperature)
            for done in range(PASSES):
                logits = self.engine.span(context[:rows], known, self._styles[:rows], self.parts, self.style_strength)
                for part in self.parts:
                    open_ = np.flatnonzero(known[part] < 0)
                    if not len(open_):
                        continue
                    part_logits = logits[part][0][open_]
                    if rows > 1:
                        part_logits = guided(part_logits, logits[part][1][open_], self.plan_strength)
                    codes, confidence = sample_codes(part_logits, self._rngs[part], temperature[open_],
                                                     self.top_k, self.top_p)
                    fix = len(open_) - still_hidden(hidden[part], done + 1, PASSES)
                    chosen = np.argsort(-confidence, kind="stable")[:fix]
                    known[part][open_[chosen]] = codes[chosen]
            for part in self.parts:
                self._history[part] = _last(np.concatenate([self._history[part], known[part][first - start:]]), self._prefix)
        self._drop_speech(stop)
        codes = {p: known[p][first - start:] for p in self.parts}
        # The decoders of a plan_decoders checkpoint end their strokes on the styled row's plan.
        return self._decoded_motion(codes, plan[0, (first - start) * r:] if self.parts else None, (stop - first) * r)

    def _decode(self, values: dict, plan) -> dict:
        """The engine's normalised part features of a span's codes ({part: (n,)}; ``plan`` (n r,) or None)."""
        return self.engine.decode(self._state, values, plan)

    def _decoded_motion(self, values: dict, plan, frames: int) -> Motion:
        """The motion of the frames every part's decoder has now reached (``DecoderDelay``), from a
        span's ``values`` per part; with no part generated, ``frames`` frames of the base pose."""
        if not self.parts:
            return self._motion({}, frames)
        self._last_decoded = values
        features = self._delay.push(self._decode(values, plan))
        return self._motion(features, len(features[self.parts[0]]))

    def _decoded_tail(self) -> Motion:
        """The frames that decoders which look ahead still owe after the last span (``DecoderDelay.tail_codes``)."""
        features = self._delay.push(self._decode(DecoderDelay.tail_codes(self._last_decoded), None))
        return self._motion(features, len(features[self.parts[0]]))

    def _let_frozen_arms_go(self, motion: Motion) -> None:
        """After a span whose ``motion`` ends with a frozen arm (``FrozenArmWatch``), forget the arm
        parts' carried codes (a diffusion model's carried latents), so that the next span takes the
        arms from the speech."""
        if self._frozen_arms is not None and self._frozen_arms.push(motion):
            for part in ARM_PARTS:
                if part in self._history:
                    self._history[part] = self._history[part][:0]

    def _plan_threshold(self, first: int, start: int, stop: int):
        """What the window's plan threshold is: None (the checkpoint's) or the ``StrokeRate``
        function of the window's apex probabilities, counting its settled new frames."""
        if self._stroke_rate is None:
            return None
        r = self._r
        last = self._total_frames is not None and stop * r >= self._total_frames
        counted = window_frames((first - start) * r, (stop - start) * r, last)
        spoken = ~self._pauses[start * r + counted.start - self._heard_start:
                               start * r + counted.stop - self._heard_start]
        return lambda probability: self._stroke_rate.threshold(probability[0], counted, spoken)

    def _pause_codes(self, start: int, stop: int) -> np.ndarray:
        """(stop - start,) bool: the window's codes that lie in a pause (``pauses.pause_codes``),
        judged on the audio's frames; those before the clip and after its end are pauses."""
        r, margin = self._r, self._pause_margin
        frame_from, frame_to = start * r - margin, stop * r + margin
        heard_from, heard_to = max(frame_from, self._heard_start), min(frame_to, self._heard_start + len(self._pauses))
        # Every frame of the window's margins that the clip has must still be here: a frame missing
        # for another reason would silently count as a pause.
        assert heard_from == max(frame_from, 0) and (heard_to == frame_to or self._total_frames is not None)
        pauses = np.ones(frame_to - frame_from, bool)
        pauses[heard_from - frame_from:heard_to - frame_from] = self._pauses[heard_from - self._heard_start:
                                                                             heard_to - self._heard_start]
        return pause_codes(pauses, r, margin)

    def _drop_speech(self, stop: int) -> None:
        """Forget the speech states before the next window's first frame, and the pause flags
        before its pause margin."""
        first_needed = max(stop - self._prefix, 0) * self._r
        self._speech, self._speech_start = _from_frame(self._speech, self._speech_start, first_needed)
        self._pauses, self._heard_start = _from_frame(self._pauses, self._heard_start, first_needed - self._pause_margin)

    def _motion(self, features: dict, n: int) -> Motion:
        """The ``n`` frames of decoded normalised part features on the base pose, continuing the root."""
        features = parts_module.denormalize(features, self._stats)
        base = self._base_pose
        base = Motion(np.repeat(base.poses, n, 0), np.repeat(base.trans, n, 0), np.repeat(base.expressions, n, 0),
                      FPS, base.betas)
        motion = parts_module.parts_to_motion(features, FPS, base=base, previous_trans=self._prev_trans)
        if "lower" in self.parts and n:  # decoders that look ahead may hold back every frame of a span
            self._prev_trans = motion.trans[-1]
        return motion


class DiffusionStream(GenerationStream):
    """``GenerationStream`` for a checkpoint of the "dim-gestor" family (``torch_model/diffusion.py``).

    The same windows at the same absolute positions (``span_codes`` codes after the previous
    window's last ``generation_prefix``, hearing the look-ahead beyond), each sampled from noise in
    the request's ``sampling_steps`` (None: ``config.sampling_steps``) DDIM steps
    (``inference/diffusion.py``) with the previous window's
    tail, and the start pose, as known latents: the denoiser reads them as a condition, and they
    replace the sample where they are given at each step's noise level (RePaint, Lugmayr et al.,
    arXiv 2201.09865). The noise of each window is drawn from the
    request's seed in window order and scaled by the temperature (0: the same motion for every
    seed), except at codes in a pause (``pauses.pause_codes``), which start from none. ``style`` None leaves the style to the voice; a named style adds its speaker, and a
    style strength other than 1 contrasts that with the voice alone, as classifier-free guidance
    does. Switched-off parts are sampled too (the denoiser works on all parts at once) but not
    decoded; they keep the start pose or the rest pose. A checkpoint with a stroke planner streams
    the planner's causal speech encoder as the code generator's stream does, and each window's
    condition reads the plan the planner makes for the named style (the mean style for none), at
    the threshold that keeps the voice at that style's rate of strokes (``StrokeRate``); a plan
    strength other than 1 moves each step's clean estimate at noise levels up to
    ``PLAN_GUIDANCE_TIME`` away from the same row's with an empty plan (classifier-free guidance,
    one more denoiser row on those steps of a window where anything is planned).
    """

    def __init__(self, engine, checkpoint: Checkpoint, request: GenerationRequest, *, on_block=None):
        if request.top_k is not None or request.top_p is not None:
            raise GenerationError("top-k and top-p choose among codes, and a dim-gestor model samples motion without "
                                  "codes: leave them out (temperature scales its noise)")
        super().__init__(engine, checkpoint, request, on_block=on_block)
        style = None if request.style is None or self.style_strength == 0.0 else checkpoint.style_index(request.style)
        self._styles = (style,) if style is None or self.style_strength == 1.0 else (style, None)
        self._rng = np.random.default_rng(request.seed)
        self._steps = int(request.sampling_steps or self.config.sampling_steps)
        self._stroke_rate = StrokeRate.for_style(self.config, style) if self.config.stroke_planner else None
        # The normalised features the windows still read, from audio frame _window_start on; the
        # first _copied rows of _pending are among them and wait for the planner's encoder.
        self._window_features = np.zeros((0, self.config.input_width), np.float32)
        self._window_start = self._copied = 0
        tensors = checkpoint.tensors
        self._latent_mean, self._latent_std = tensors["generator.latent_mean"], tensors["generator.latent_std"]
        self._codebooks = {p: tensors[f"vq.{p}.codebook.weight"] for p in PARTS}
        d = self.config.code_dim
        self._history = {p: np.zeros((0, d), np.float32) for p in self.parts}  # normalised latents

    def _encode_speech(self, need: int, final: bool) -> bool:
        # The windows read the normalised features themselves; only a stroke planner's encoder
        # carries state, run in the code generator's fixed blocks.
        if len(self._pending) > self._copied:
            self._window_features = np.concatenate([self._window_features, self._pending[self._copied:]])
        heard = self._window_start + len(self._window_features) >= need
        if not self.config.stroke_planner:
            self._pending, self._copied = self._pending[:0], 0
            return heard
        encoded = super()._encode_speech(need, final)
        self._copied = len(self._pending)
        return encoded and heard

    def _drop_speech(self, stop: int) -> None:
        super()._drop_speech(stop)
        self._window_features, self._window_start = _from_frame(self._window_features, self._window_start,
                                                                max(stop - self._prefix, 0) * self._r)

    def _part_slice(self, part: str) -> slice:
        i, d = PARTS.index(part), self.config.code_dim
        return slice(i * d, (i + 1) * d)

    def _known(self, first: int, start: int, stop: int):
        """The window's known normalised latents (n, C) and mask (n, 4): the previous window's tail
        and the start pose's codes, for the generated parts."""
        n, width = stop - start, self.config.latent_dim
        known, mask = np.zeros((n, width), np.float32), np.zeros((n, len(PARTS)), np.float32)
        for part in self.parts:
            cols, i = self._part_slice(part), PARTS.index(part)
            history = self._history[part][len(self._history[part]) - (first - start):]
            known[:len(history), cols], mask[:len(history), i] = history, 1.0
            seed = self._seed_codes.get(part)
            if seed is not None and first < len(seed):
                fixed = seed[first:stop]
                rows = slice(first - start, first - start + len(fixed))
                known[rows, cols] = (self._codebooks[part][fixed] - self._latent_mean[cols]) / self._latent_std[cols]
                mask[rows, i] = 1.0
        return known, mask

    def _generate_span(self, first: int, stop: int) -> Motion:
        r, look = self._r, self._lookahead
        start = max(first - self._prefix, 0)
        n = stop - start
        noise = self._rng.standard_normal((n, self.config.latent_dim)).astype(np.float32) * np.float32(self.temperature)
        # A code in a pause starts from no noise, as the code generator samples it at temperature
        # 0: the denoiser's estimate there is its rest (README, "Rest in pauses": in 6 s of silence
        # the wrists moved at 0.02 of their speed in speech, against 0.22 from noise).
        noise[self._pause_codes(start, stop)] = 0.0
        latents, plan = {}, None
        if self.parts:
            known, mask = self._known(first, start, stop)
            given = np.repeat(mask, self.config.code_dim, -1) > 0
            features = self._window_features[start * r - self._window_start:stop * r + look - self._window_start]
            speech = (self._speech[start * r - self._speech_start:stop * r + look - self._speech_start]
                      if self.config.stroke_planner else None)
            cond, style, plan = self.engine.condition(features, self._styles, speech,
                                                      self._plan_threshold(first, start, stop))
            # Plan guidance's row: the styled one with nothing planned (none where nothing is
            # planned, as the code generator skips its empty-plan row there).
            bare = None
            if plan is not None and plan.any() and self.plan_strength != 1.0:
                bare = self.engine.condition(features, self._styles[:1], speech, plan=np.zeros_like(plan))[:2]
            x = np.repeat(noise[None], len(self._styles), 0)
            times = sampling_times(self._steps)
            for t, t_next in zip(times[:-1], times[1:]):
                # The given latents also enter the noisy sample at this step's noise level
                # (RePaint), so the new codes grow from where the previous window ended: seams
                # measured 2.4x the jerk elsewhere this way against 3.3x from the condition alone.
                a = float(alpha_bar(t))
                x = np.where(given, np.float32(np.sqrt(a)) * known + np.float32(np.sqrt(1.0 - a)) * noise, x)
                x0 = np.asarray(self.engine.denoise(x, float(t), cond, style, known, mask), np.float32)
                if len(self._styles) > 1:  # the styled estimate, moved away from the voice alone
                    x0 = np.repeat(guided(x0[0], x0[1], np.float32(self.style_strength))[None], len(x0), 0)
                if bare is not None and t <= PLAN_GUIDANCE_TIME:  # and away from an empty plan's
                    unplanned = np.asarray(self.engine.denoise(x[:1], float(t), *bare, known, mask), np.float32)
                    x0 = np.repeat(guided(x0[0], unplanned[0], np.float32(self.plan_strength))[None], len(x0), 0)
                x = ddim_step(x, x0, float(t), float(t_next))
                self.on_block(self.frames_done)  # lets a caller cancel between steps
            sample = np.where(given, known, x[0])
            for part in self.parts:
                cols = self._part_slice(part)
                self._history[part] = _last(np.concatenate([self._history[part], sample[first - start:, cols]]), self._prefix)
                latents[part] = sample[first - start:, cols] * self._latent_std[cols] + self._latent_mean[cols]
        self._drop_speech(stop)
        # The decoders of a plan_decoders stage 1 end their strokes on the plan.
        return self._decoded_motion(latents, None if plan is None else plan[(first - start) * r:], (stop - first) * r)

    def _decode(self, values: dict, plan) -> dict:
        """The engine's normalised part features of a span's latents ({part: (n, code_dim)})."""
        return self.engine.decode_latents(self._state, values, plan)


STREAMS = {"vq-mamba": GenerationStream, "dim-gestor": DiffusionStream}


def open_stream(engine, checkpoint: Checkpoint, request: GenerationRequest, *, on_block=None) -> GenerationStream:
    """The stream that generates with ``checkpoint``'s model family (same interface for both)."""
    return STREAMS[checkpoint.config.family](engine, checkpoint, request, on_block=on_block)


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

    stream = open_stream(engine, checkpoint, request, on_block=on_block)
    # Pushed in pieces so that the stream never copies the whole recording at once.
    piece = 30 * SAMPLE_RATE
    pieces = [stream.push_audio(audio[i:i + piece]) for i in range(0, len(audio), piece)] + [stream.finish()]
    pieces = [m for m in pieces if m is not None]
    motion = Motion.join(pieces)
    progress(1.0, "Done")
    return motion
