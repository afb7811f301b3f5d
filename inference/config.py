"""Model hyper-parameters: one dataclass, serialised as JSON into every checkpoint.

``small`` is the default (fast on a laptop CPU, shipped checkpoint well under 30 MB);
``mambatalk`` is the published MambaTalk size (about 200 M parameters) for GPU training.
Everything the model's shapes depend on lives here, so a checkpoint's config alone says how to
build the network that reads it (``architecture.tensor_shapes``).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace

from ..errors import GesturaError
from ..rigs.skeleton import PART_DIMS, PARTS
from .features import FEATURE_DIM, PITCH_DIM


class ConfigError(GesturaError, ValueError):
    """A model configuration that cannot describe a network."""


# Stage 2's bidirectional scans: over each window's speech states, over a span's codes, per part.
SCANS = ("window", "global", "local")
# Stage-2 model families: MambaTalk's masked code generator, or DiM-Gestor's diffusion model over
# the VQ-VAE decoders' latents (``torch_model/diffusion.py``); stage 1 is the same for both.
FAMILIES = ("vq-mamba", "dim-gestor")
DENOISER_BLOCKS = ("mamba2", "attention")  # "attention": the transformer baseline of the same size
# What ``gestura train --family dim-gestor`` starts from: a longer window than the code
# generator's (4.3 s of which 1.1 s is the previous window's tail), since each window costs a
# fixed number of denoiser passes whatever its length.
FAMILY_DEFAULTS = {"vq-mamba": {}, "dim-gestor": {"span_codes": 24, "prefix_codes": 8}}


def _scan_granularities(value, d_inner: int) -> dict:
    """``granularities`` as {scan: tuple of factors}, checked; one list stands for every scan."""
    if isinstance(value, (list, tuple)):
        value = {scan: value for scan in SCANS}
    if not isinstance(value, dict) or set(value) != set(SCANS):
        raise ConfigError(f"model config 'granularities' must be one list of pooling factors, e.g. [1, 2, 4, 8], "
                          f"or one per scan {list(SCANS)}, got {value!r}")
    out = {}
    for scan in SCANS:
        factors = value[scan]
        if (not isinstance(factors, (list, tuple)) or not factors
                or any(not isinstance(f, int) or f < 1 for f in factors) or list(factors) != sorted(set(factors))):
            raise ConfigError(f"model config 'granularities' of the {scan} scan must be increasing positive integers, "
                              f"e.g. [1, 2, 4, 8], got {factors!r}")
        if d_inner % len(factors):
            raise ConfigError(f"model config 'granularities' splits the mixers' inner width {d_inner} (expand x "
                              f"d_model) into {len(factors)} branches in the {scan} scan: choose a count that divides it")
        out[scan] = tuple(factors)
    return out


@dataclass(frozen=True)
class ModelConfig:
    name: str = "small"
    # Audio features (features.py): fixed by the feature code, recorded to catch a mismatch.
    feature_dim: int = FEATURE_DIM
    # Stage 1: one VQ-VAE per part (causal convolutions; one code per ``frames_per_code`` frames).
    frames_per_code: int = 4  # 7.5 codes/s at 30 fps, as GestureLSM and LiveGesture
    codebook_size: int = 256
    code_dim: int = 64
    vq_hidden: int = 128
    vq_layers: dict = field(default_factory=lambda: {"face": 2, "upper": 2, "hands": 2, "lower": 4})
    commitment: float = 1.0
    # Frames each part's decoder looks ahead (0 to ``frames_per_code``): its causal output for
    # frame t + l is trained on frame t, so it can start into a code's pose before that code's
    # first frame instead of turning there (the jerk of a causal decoder peaks at that frame).
    # Generation holds back that many frames until the next code is known (``decoder_delay.py``).
    decoder_lookahead: dict = field(default_factory=lambda: {p: 0 for p in PARTS})
    gmp_hidden: int = 96
    gmp_layers: int = 2
    # Stage 2: the span generator (masked code prediction over spans, MaskGIT/MoMask-style).
    d_model: int = 128
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int = 0  # 0 = ceil(d_model / 16), mamba-ssm's default
    mlp_ratio: float = 2.0  # gated MLP after each Mamba mixer; 0 disables it
    speech_layers: int = 2
    speech_window_layers: int = 1  # bidirectional scans over each window's speech states
    # Pooling factors of each bidirectional scan (SCANS): (1,) is one scan at the sequence's own
    # rate; several factors give GranuMamba-style multi-granularity blocks, whose branches split
    # the mixer's inner width (``d_inner / len``), so the parameter count stays. One list is
    # taken for every scan.
    granularities: dict = field(default_factory=lambda: {scan: (1,) for scan in SCANS})
    global_layers: int = 2
    local_layers: dict = field(default_factory=lambda: {"face": 2, "upper": 1, "hands": 1, "lower": 1})
    num_styles: int = 4
    lookahead: int = 30  # audio frames (1 s) a code hears beyond its last frame
    span_codes: int = 16  # codes generated together (64 frames, 2.1 s, at 4 frames per code)
    prefix_codes: int = 4  # codes of the previous span a training window reads as known (or not)
    # How many of them each span is given at generation; None: all ``prefix_codes``. Training shows
    # a window 0 to ``prefix_codes`` known codes of the previous span (``span_mask``: its first ones,
    # the rest of the prefix hidden), so the model has learnt spans with fewer; generation puts the
    # carried ones next to the span, in a shorter window. Fewer let a held pose go sooner
    # (MODEL_CARD.md, "Carried codes").
    carried_codes: int | None = None
    # Stroke-apex probability above which the head's peaks become the plan the body reads
    # (inference/stroke_plan.py); ``gestura train`` calibrates it on the data's stroke rate.
    apex_threshold: float = 0.5
    # The stroke apexes per second of speech the head plans at ``apex_threshold`` on the clips it
    # is calibrated on, one per style in the checkpoint's order. Given them, generation lowers the
    # threshold for a voice on which the head plans fewer (``stroke_plan.StrokeRate``): a human
    # voice gets the strokes the model gives its training speech. Empty: the threshold is fixed.
    apex_rates: tuple = ()
    # The style (index into the checkpoint's styles) generation uses when none is named: the one
    # whose body follows a human voice best is the one to show first (MODEL_CARD.md, "Default style").
    default_style: int = 0
    # A stroke planner of its own (``generator.planner``: a second causal speech encoder, window
    # scan, style embedding and apex head, trained on the apex loss alone by ``gestura train
    # --stroke-planner``) makes the plan in place of the body's apex head, so that training the
    # plan does not change what the body hears. Its speech states sit beside the body's, so the
    # engines' speech states are ``speech_width`` wide. A dim-gestor model with one reads the
    # planner's plan in its per-code condition (``torch_model/diffusion.py``); its planner is one
    # trained for a vq-mamba model (``gestura train --family dim-gestor --planner-from CKPT``).
    stroke_planner: bool = False
    # The stroke planner also hears each frame's voicing and pitch (``features.PITCH_NAMES``, not
    # normalised) after the speech features: the synthesizer ranks syllables for strokes by pitch
    # as much as by loudness, which log-mel bands do not resolve (MODEL_CARD.md, "Where the plan
    # falls short, and a planner that hears pitch"). The body's speech encoder never reads them.
    planner_pitch: bool = False
    # The body's VQ decoders (``PLAN_DECODER_PARTS``: upper body and hands) also read the stroke
    # plan, frame by frame (``vq.P.plan_in``), so that a stroke can peak and end on its apex within
    # a code's 4 frames, which codes alone smooth away (``gestura train-vq --decoder-only
    # --plan-decoders``; MODEL_CARD.md, "Decoders that read the plan"). A dim-gestor model's read
    # its planner's plan, or an empty one where it has no planner.
    plan_decoders: bool = False
    # Stage 2 family (FAMILIES) and, for "dim-gestor", its denoiser: ``denoiser_layers`` AdaLN
    # blocks of DENOISER_BLOCKS kind, Mamba-2 mixers with heads of ``headdim`` channels and
    # ``mamba2_d_state`` states (the speech extractor uses the same mixers, ``speech_layers``
    # deep), attention with ``attention_heads`` heads; ``sampling_steps`` DDIM steps by default.
    family: str = "vq-mamba"
    denoiser_block: str = "mamba2"
    denoiser_layers: int = 8
    headdim: int = 32
    mamba2_d_state: int = 32
    attention_heads: int = 4
    sampling_steps: int = 10

    def __post_init__(self) -> None:
        for name in ("frames_per_code", "span_codes", "codebook_size", "code_dim", "vq_hidden", "gmp_hidden", "gmp_layers", "d_model",
                     "d_state", "d_conv", "expand", "num_styles", "feature_dim"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"model config '{name}' must be a positive integer, got {getattr(self, name)!r}")
        for name in ("lookahead", "prefix_codes", "speech_layers", "speech_window_layers", "global_layers", "dt_rank"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"model config '{name}' must not be negative, got {getattr(self, name)!r}")
        for name in ("vq_layers", "local_layers"):
            value = getattr(self, name)
            if set(value) != set(PARTS):
                raise ConfigError(f"model config '{name}' must give a count for each part {PARTS}, got {sorted(value)}")
        self._check_decoder_lookahead()
        object.__setattr__(self, "granularities", _scan_granularities(self.granularities, self.d_inner))
        if self.mlp_ratio < 0:
            raise ConfigError("model config 'mlp_ratio' must not be negative")
        if not 0.0 < self.apex_threshold < 1.0:
            raise ConfigError(f"model config 'apex_threshold' must lie between 0 and 1, got {self.apex_threshold!r}")
        self._check_apex_rates()
        if (isinstance(self.default_style, bool) or not isinstance(self.default_style, int)
                or not 0 <= self.default_style < self.num_styles):
            raise ConfigError(f"model config 'default_style' must be a style index from 0 to {self.num_styles - 1} "
                              f"('num_styles' - 1), got {self.default_style!r}")
        self._check_family()
        if not isinstance(self.stroke_planner, bool):
            raise ConfigError(f"model config 'stroke_planner' must be true or false, got {self.stroke_planner!r}")
        if not isinstance(self.planner_pitch, bool):
            raise ConfigError(f"model config 'planner_pitch' must be true or false, got {self.planner_pitch!r}")
        if self.planner_pitch and not self.stroke_planner:
            raise ConfigError("model config 'planner_pitch' needs 'stroke_planner': only a stroke planner hears pitch")
        if not isinstance(self.plan_decoders, bool):
            raise ConfigError(f"model config 'plan_decoders' must be true or false, got {self.plan_decoders!r}")
        if self.carried_codes is not None and (isinstance(self.carried_codes, bool)
                                               or not isinstance(self.carried_codes, int)
                                               or not 0 <= self.carried_codes <= self.prefix_codes):
            raise ConfigError(f"model config 'carried_codes' must be a whole number from 0 to 'prefix_codes' "
                              f"({self.prefix_codes}), or null for all of them, got {self.carried_codes!r}")
        if self.prefix_codes >= self.span_codes:
            raise ConfigError(f"model config 'prefix_codes' ({self.prefix_codes}) must be smaller than "
                              f"'span_codes' ({self.span_codes})")

    def _check_decoder_lookahead(self) -> None:
        value = self.decoder_lookahead
        if (not isinstance(value, dict) or set(value) != set(PARTS)
                or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= self.frames_per_code
                       for v in value.values())):
            raise ConfigError(f"model config 'decoder_lookahead' must give each part {PARTS} a whole number of frames "
                              f"from 0 to 'frames_per_code' ({self.frames_per_code}), got {value!r}")

    def _check_apex_rates(self) -> None:
        rates = self.apex_rates
        if isinstance(rates, (list, tuple)) and all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in rates):
            rates = tuple(float(r) for r in rates)
            if not rates or (len(rates) == self.num_styles and all(math.isfinite(r) and r > 0 for r in rates)):
                object.__setattr__(self, "apex_rates", rates)
                return
        raise ConfigError(f"model config 'apex_rates' must be empty or one positive number per style "
                          f"({self.num_styles}), got {self.apex_rates!r}")

    def _check_family(self) -> None:
        for name, value, choices in (("family", self.family, FAMILIES),
                                     ("denoiser_block", self.denoiser_block, DENOISER_BLOCKS)):
            if value not in choices:
                raise ConfigError(f"model config '{name}' must be one of {list(choices)}, got {value!r}")
        for name in ("denoiser_layers", "headdim", "mamba2_d_state", "attention_heads", "sampling_steps"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"model config '{name}' must be a positive integer, got {getattr(self, name)!r}")
        if self.family == "dim-gestor":
            if self.mlp_hidden < 1:
                raise ConfigError("model config 'mlp_ratio' must be positive for the dim-gestor family: "
                                  "its blocks always have an MLP")
            if self.d_inner % self.headdim:
                raise ConfigError(f"model config 'headdim' ({self.headdim}) must divide the Mamba-2 inner width "
                                  f"{self.d_inner} (expand x d_model): choose a divisor such as 32 or 64")
            if self.d_model % self.attention_heads:
                raise ConfigError(f"model config 'attention_heads' ({self.attention_heads}) must divide d_model "
                                  f"({self.d_model})")

    # Derived sizes, named as in mamba-ssm.
    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def speech_width(self) -> int:
        """Width of the speech states the engines hand the pipeline: for the vq-mamba family the
        body's d_model, and the stroke planner's d_model beside them when there is one; for the
        dim-gestor family (whose windows read the features themselves) the planner's, or none."""
        if self.family == "dim-gestor":
            return self.d_model if self.stroke_planner else 0
        return self.d_model * (2 if self.stroke_planner else 1)

    @property
    def plans_strokes(self) -> bool:
        """True when generation strokes on a stroke plan the model makes from the speech: every
        vq-mamba model (its stroke planner, or its own apex head) and a dim-gestor model with a
        ``stroke_planner``."""
        return self.family == "vq-mamba" or self.stroke_planner

    @property
    def input_width(self) -> int:
        """Columns of the audio features the engines stream: the ``feature_dim`` speech features,
        and voicing and pitch after them for a ``planner_pitch`` planner (``features.feature_width``)."""
        return self.feature_dim + (PITCH_DIM if self.planner_pitch else 0)

    @property
    def multi_granularity(self) -> bool:
        """True when any bidirectional scan is a multi-granularity block (factors other than (1,))."""
        return any(factors != (1,) for factors in self.granularities.values())

    @property
    def nheads(self) -> int:
        """Mamba-2 heads of the denoiser's mixers (d_inner / headdim)."""
        return self.d_inner // self.headdim

    @property
    def latent_dim(self) -> int:
        """Width of the diffused motion latent: every part's code latent side by side (4 D)."""
        return len(PARTS) * self.code_dim

    @property
    def dt_rank_value(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)

    @property
    def mlp_hidden(self) -> int:
        return int(round(self.mlp_ratio * self.d_model))

    @property
    def generation_prefix(self) -> int:
        """Codes of the previous span each span is given at generation: ``carried_codes``, or all
        ``prefix_codes`` when it is None."""
        return self.prefix_codes if self.carried_codes is None else self.carried_codes

    @property
    def span_frames(self) -> int:
        return self.span_codes * self.frames_per_code

    @property
    def part_dims(self) -> dict:
        return dict(PART_DIMS)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"model config has unknown keys {unknown}: the checkpoint was written by a newer Gestura")
        return cls(**data)

    def with_(self, **changes) -> "ModelConfig":
        return replace(self, **changes)

    def for_styles(self, num_styles: int) -> "ModelConfig":
        """This config for ``num_styles`` other styles: what belongs to the old ones (their stroke
        rates, the default style) is reset, so that configs can be compared without it."""
        return replace(self, num_styles=num_styles, apex_rates=(), default_style=0)


CONFIGS: dict[str, ModelConfig] = {
    "small": ModelConfig(),
    # MambaTalk's published size (about 200 M parameters): 256 codes x 256 dims, wide Mamba stacks
    # (bidirectional blocks hold two mixers, so the local stacks are as deep as small's, and the
    # window scan takes the place of a sixth causal speech block), for GPU training on BEAT2.
    "mambatalk": ModelConfig(
        name="mambatalk", codebook_size=256, code_dim=256, vq_hidden=512,
        gmp_hidden=256, gmp_layers=4, d_model=768, mlp_ratio=2.0,
        speech_layers=5, global_layers=6, local_layers={"face": 2, "upper": 1, "hands": 1, "lower": 1},
        num_styles=25,
    ),
}


def get_config(name: str) -> ModelConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(f"unknown model config '{name}': choose one of {sorted(CONFIGS)}") from None
