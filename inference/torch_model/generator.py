"""Stage 2: speech -> per-part motion codes, a whole span at a time (MambaTalk's global and
per-part scans, decoded MaskGIT/MoMask-style).

Structure (names as in ``architecture.py``; r = frames per code, L = look-ahead in frames):
- speech encoder: ``audio_in``, causal ``speech`` Mamba blocks and ``speech_norm`` over the audio
  features, one state per audio frame (30 fps), streamed with carried state;
- window scan: bidirectional ``speech_window`` blocks over the speech states of a window (its
  codes' motion frames plus the look-ahead), so that a frame hears what follows it in the window
  as clearly as what precedes it (a stroke lands on the stressed syllable of a phrase that is
  still being spoken);
- frame pairs: motion frame ``t`` reads two window states, ``t`` (the speech at that instant) and
  ``t + L`` (L frames, 1 s, later);
- stroke apexes: ``apex`` reads frame t's pair and the style and gives the logit that a stroke
  ends at motion frame ``t`` (trained on the corpus's planned apexes, ``gestura synth``);
- stroke plan: the body reads a plan of stroke apexes (``inference/stroke_plan.py``): in training
  the corpus's, in generation the head's peaks above the checkpoint's ``apex_threshold``; where
  the config has a ``stroke_planner``, a second copy of the speech encoder, window scan, style and
  head (``planner``, trained on the apex loss alone) makes it in place of ``apex``;
- code context: ``code_in`` turns the r frame pairs of code k and the plan at its r frames into
  one vector;
- ``style`` adds a speaker embedding (their mean for the speaker-neutral stream of style
  strength), and ``part_in.P`` each part's known code (its codebook latent, or ``mask_latent``
  for an unknown one);
- global scan: bidirectional ``global_blocks`` over the span's codes, then ``global_norm``;
- local scans: per part, ``part_in.P`` of the part's own known code again, bidirectional
  ``local.P`` blocks, ``out_norm.P`` and ``logits.P``.

Every bidirectional scan here (window, global, local) is a ``mamba.BiMambaBlock``, or, where
``config.granularities`` gives that scan several pooling factors (say [1, 2, 4, 8]), a
``mamba.GranularBiMambaBlock`` that scans it at several temporal granularities at once (GranuMamba).

Generation fills a span of ``span_codes`` codes from whatever is fixed (the previous span's last
``prefix_codes`` codes, a start pose, nothing for parts that are switched off) in a few parallel
passes, the most confident codes first (``inference/pipeline.py``). Training hides whole runs of
codes (``span_mask``), so the model cannot copy its own past and has to listen.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...rigs.skeleton import PARTS
from ..sampling import guided
from ..stroke_plan import plan_threshold, stroke_plan
from .layers import RMSNorm, rms_norm
from .mamba import MambaBlock, MambaStack, StackedLinear, bidirectional_block, bidirectional_layer


class SpeechScans(nn.Module):
    """What the stroke-apex head hears: the causal speech encoder (``audio_in``, ``speech``,
    ``speech_norm``), the window scan (``speech_window``), the style embedding and the head
    (``apex``). The generator is one, reading ``config.feature_dim`` feature columns; a
    ``StrokePlanner`` is another, of the same shapes but reading ``config.input_width`` (pitch too,
    for a ``planner_pitch`` planner)."""

    def __init__(self, config, in_dim: int | None = None):
        super().__init__()
        d = config.d_model
        self.lookahead = config.lookahead
        self.audio_in = nn.Linear(config.feature_dim if in_dim is None else in_dim, d)
        self.speech = MambaStack(MambaBlock(config) for _ in range(config.speech_layers))
        self.speech_norm = RMSNorm(d)
        self.speech_window = MambaStack(bidirectional_block(config, config.granularities["window"])
                                       for _ in range(config.speech_window_layers))
        self.apex = nn.Linear(3 * d, 1)
        self.style = nn.Embedding(config.num_styles, d)
        nn.init.normal_(self.style.weight, std=0.02)

    def speech_states(self, features: torch.Tensor, state=None):
        """features (B, T, F) normalised -> speech states (B, T, d), state. Causal: row j depends on
        audio frames <= j only, so a clip may be run in pieces with the returned state."""
        s, state = self.speech.run(self.audio_in(features), state)
        return self.speech_norm(s), state

    def window_pairs(self, speech: torch.Tensor) -> torch.Tensor:
        """Speech states of a window's motion frames ``[f0, f0 + m + L)`` (B, m + L, d) -> each of the
        m frames' pair of window-scanned states ``t`` and ``t + L`` (B, m, 2 d)."""
        x, _ = self.speech_window.run(speech)
        m = x.shape[1] - self.lookahead
        return torch.cat([x[:, :m], x[:, self.lookahead:]], -1)

    def apex_logits(self, pairs: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Frame pairs (B, m, 2 d) and style embeddings (B, d) -> stroke-apex logits of those motion
        frames (B, m); either batch may be 1 and is then shared. The style sets how often a
        speaker strokes."""
        b = max(pairs.shape[0], style.shape[0])
        style = style.unsqueeze(1).expand(b, pairs.shape[1], -1)
        return self.apex(torch.cat([pairs.expand(b, -1, -1), style], -1))[..., 0]

    def style_embedding(self, style: torch.Tensor | None) -> torch.Tensor:
        """(B, d) speaker embeddings of style indices (B,); None: their mean (1, d), no speaker."""
        if style is None:
            return self.style.weight.mean(0, keepdim=True)
        return self.style(style)

    def window_probabilities(self, speech: torch.Tensor, styles: tuple, pairs: torch.Tensor | None = None) -> torch.Tensor:
        """Stroke-apex probabilities (S, m) of a window's motion frames for each of ``styles`` (a
        tuple of indices, None for the mean style), from this head's speech states of the window
        (1, m + L, d); ``pairs``: their ``window_pairs``, when already computed."""
        pairs = self.window_pairs(speech) if pairs is None else pairs
        return torch.sigmoid(self.apex_logits(pairs, self.style_embeddings(styles)))

    def style_embeddings(self, styles: tuple, strength: float = 1.0) -> torch.Tensor:
        """(S, d) embeddings of a tuple of style indices, None standing for the mean (no speaker),
        each ``strength`` times as far from the mean as learnt (``sampling.guided``)."""
        mean = self.style_embedding(None)
        return torch.cat([mean if s is None else guided(self.style.weight[s:s + 1], mean, strength)
                          for s in styles])


class StrokePlanner(SpeechScans):
    """A stroke-apex head with speech scans of its own (``config.stroke_planner``): trained on the
    apex loss alone (``gestura train --stroke-planner``), so that a better plan does not change
    what the body hears. Measured in ``weights/MODEL_CARD.md``."""

    def forward(self, features: torch.Tensor, style: torch.Tensor, starts: torch.Tensor, frames: int) -> torch.Tensor:
        """Training pass: features (B, T, ``config.input_width``) normalised, each row ending L frames after its window
        of ``frames`` motion frames, which begins at ``starts`` (B,) long (the frames before it
        warm the causal encoder up, as the earlier speech does in generation); style (B,) ->
        stroke-apex logits of the windows' frames (B, frames)."""
        s, _ = self.speech_states(features)
        index = starts[:, None] + torch.arange(frames + self.lookahead, device=s.device)
        window = torch.gather(s, 1, index[..., None].expand(-1, -1, s.shape[-1]))
        return self.apex_logits(self.window_pairs(window), self.style(style))


class Generator(SpeechScans):
    def __init__(self, config):
        super().__init__(config)
        self.config = config
        d, cd, k, r = config.d_model, config.code_dim, config.codebook_size, config.frames_per_code
        self.frames_per_code = r
        self.planner = StrokePlanner(config, config.input_width) if config.stroke_planner else None
        self.code_in = nn.Linear(r * (2 * d + 1), d)
        self.mask_latent = nn.Parameter(torch.randn(len(PARTS), cd) * 0.02)
        self.part_in = nn.ModuleDict({p: nn.Linear(cd, d) for p in PARTS})
        self.global_blocks = MambaStack(bidirectional_block(config, config.granularities["global"])
                                       for _ in range(config.global_layers))
        self.global_norm = RMSNorm(d)
        self.local = nn.ModuleDict({p: MambaStack(bidirectional_block(config, config.granularities["local"])
                                                   for _ in range(config.local_layers[p]))
                                    for p in PARTS})
        self.out_norm = nn.ModuleDict({p: RMSNorm(d) for p in PARTS})
        self.logits = nn.ModuleDict({p: nn.Linear(d, k) for p in PARTS})

    # --- speech: causal, streamed ------------------------------------------------------------
    def stream_speech(self, features: torch.Tensor, state=None):
        """What the engines stream: features (B, T, ``config.input_width``) normalised -> speech
        states (B, T, ``config.speech_width``), state: the body's (``speech_states`` of the first
        ``feature_dim`` columns), and the stroke planner's (of them all) beside them when there is
        one. Causal, as ``speech_states``."""
        if self.planner is None:
            return self.speech_states(features, state)
        body, planner = state or (None, None)
        s, body = self.speech_states(features[..., :self.config.feature_dim], body)
        p, planner = self.planner.speech_states(features, planner)
        return torch.cat([s, p], -1), (body, planner)

    def apex_probabilities(self, speech: torch.Tensor, styles: tuple, pairs: torch.Tensor | None = None) -> torch.Tensor:
        """Stroke-apex probabilities (S, m) of a window's motion frames for each of ``styles`` (a
        tuple of indices, None for the mean style). ``speech`` (1, m + L, ``speech_width``): the
        window's streamed states (``stream_speech``). The stroke planner's head when there is one,
        else the generator's own; ``pairs``: the generator's ``window_pairs`` of the window, when
        already computed."""
        d = self.config.d_model
        if self.planner is not None:
            return self.planner.window_probabilities(speech[..., d:], styles)
        return self.window_probabilities(speech[..., :d], styles, pairs)

    def window_context(self, speech: torch.Tensor, styles: tuple, plans: tuple | None = None,
                       threshold=None) -> tuple[torch.Tensor, np.ndarray]:
        """What a window of n codes hears, for each of ``styles`` (a tuple of indices, None for the
        mean style): speech (1, n r + L, ``speech_width``) from ``stream_speech`` -> (S, n, d): the
        window scan, the stroke plan and ``code_in``; and that stroke plan, (S, n r) float32 numpy
        (what ``config.plan_decoders`` decoders read). ``plans``: per style, False for an empty
        plan (no apex anywhere: what plan strength guides away from); None = every style reads its
        plan. ``threshold``: the plan's (``stroke_plan.plan_threshold``)."""
        pairs = self.window_pairs(speech[..., :self.config.d_model])
        probability = self.apex_probabilities(speech, styles, pairs).float().cpu().numpy()
        plan = stroke_plan(probability, plan_threshold(threshold, probability, self.config))
        if plans is not None:
            plan = plan * np.asarray(plans, np.float32)[:, None]
        return self.code_context(pairs, torch.from_numpy(plan).to(pairs)), plan

    def code_context(self, pairs: torch.Tensor, plan: torch.Tensor) -> torch.Tensor:
        """Frame pairs of the motion frames of ``n`` codes (B, n r, 2 d) from ``window_pairs`` and
        the stroke plan the body reads (B, n r) -> (B, n, d); either batch may be 1 and is then
        shared. ``plan``: ``stroke_plan.apex_bumps`` of the corpus's apexes in training,
        ``stroke_plan.stroke_plan`` of the head's probabilities in generation."""
        b = max(pairs.shape[0], plan.shape[0])
        pairs = pairs.expand(b, -1, -1)
        _, t, d2 = pairs.shape
        r = self.frames_per_code
        x = torch.cat([pairs.reshape(b, t // r, r * d2), plan.expand(b, -1).reshape(b, t // r, r)], -1)
        return self.code_in(x)

    def known_latents(self, codebooks: dict, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, n, 4) long, -1 = unknown -> latents (B, n, 4, D): codebook rows, ``mask_latent``
        where unknown. ``codebooks`` {part: (K, D)}."""
        rows = []
        for i, part in enumerate(PARTS):
            c = codes[..., i]
            latent = codebooks[part][c.clamp(min=0)]
            rows.append(torch.where((c < 0).unsqueeze(-1), self.mask_latent[i].to(latent.dtype), latent))
        return torch.stack(rows, 2)

    # --- one span: bidirectional over its codes ----------------------------------------------
    def span_logits(self, context: torch.Tensor, style: torch.Tensor, latents: torch.Tensor, parts=PARTS) -> dict:
        """context (B, n, d) from ``code_context``; style (B, d) or (1, d) from ``style_embedding``;
        latents (B, n, 4, D) from ``known_latents`` -> {part: logits (B, n, K)} for ``parts``."""
        embedded = {p: self.part_in[p](latents[:, :, i]) for i, p in enumerate(PARTS)}
        g = context + style.unsqueeze(1) + sum(embedded.values())
        g, _ = self.global_blocks.run(g)
        g = self.global_norm(g)
        out = {}
        for part in parts:
            x, _ = self.local[part].run(g + embedded[part])
            out[part] = self.logits[part](self.out_norm[part](x))
        return out

    def span_logits_fast(self, context: torch.Tensor, style: torch.Tensor, latents: torch.Tensor,
                         parts=PARTS) -> dict:
        """``span_logits`` for generation (same arguments and results, to float rounding; no
        autograd): each bidirectional layer runs its two directions as one stacked mixer, and
        layer i of every asked part's local stack runs as one (``mamba.BiMambaLayer``). The
        stacked weights are copies, made again when a parameter changes."""
        parts = tuple(parts)
        stacked = self._stacked_layers(parts)
        embedded = {p: self.part_in[p](latents[:, :, i]) for i, p in enumerate(PARTS)}
        g = context + style.unsqueeze(1) + sum(embedded.values())
        for layer in stacked["global"]:
            g = layer(g[None])[0]
        g = self.global_norm(g)
        if not parts:
            return {}
        x = g[None] + torch.stack([embedded[p] for p in parts])  # (P, B, n, d)
        for members, layer in stacked["local"]:
            if members is None:
                x = layer(x)
            else:
                x = x.index_copy(0, members, layer(x[members]))
        logits = stacked["logits"](rms_norm(x, stacked["out_norm"], self.out_norm[parts[0]].eps))
        return dict(zip(parts, logits))

    def _stacked_layers(self, parts: tuple) -> dict:
        """The stacked global layers and ``parts``' local layers, out_norm and logits heads, built
        once per set of parts while the parameters stay the same (tensor and version)."""
        cache = self.__dict__.setdefault("_stacked_cache", {})
        params = cache.get("params")
        if params is None or cache["key"] != [(p.data_ptr(), p._version) for p in params]:
            cache.clear()
            cache["params"] = params = list(self.parameters())
            cache["key"] = [(p.data_ptr(), p._version) for p in params]
            cache["global"] = [bidirectional_layer([block]) for block in self.global_blocks]
        if parts not in cache:
            local = []
            for i in range(max(len(self.local[p]) for p in parts) if parts else 0):
                members = [j for j, p in enumerate(parts) if len(self.local[p]) > i]
                layer = bidirectional_layer([self.local[parts[j]][i] for j in members])
                index = None if len(members) == len(parts) else torch.tensor(members, device=self.mask_latent.device)
                local.append((index, layer))
            cache[parts] = {
                "local": local,
                "out_norm": torch.stack([self.out_norm[p].weight.detach() for p in parts])[:, None, None],
                "logits": StackedLinear([self.logits[p] for p in parts]),
            }
        return {"global": cache["global"], **cache[parts]}

    def forward(self, features: torch.Tensor, style: torch.Tensor, codebooks: dict, codes: torch.Tensor,
                plan: torch.Tensor):
        """Training pass over windows of n codes.

        features (B, n r + L, F): normalised audio features from the window's first frame to L
        frames beyond its last; style (B,); codebooks {part: (K, D)}; codes (B, n, 4) long with -1
        where hidden (``span_mask``); plan (B, n r): the corpus's stroke plan, which the body reads
        (``stroke_plan.apex_bumps``), and the apex head learns to predict.
        Returns ({part: logits (B, n, K)}, apex logits (B, n r))."""
        n = codes.shape[1]
        speech, _ = self.speech_states(features)
        speech = speech[:, :n * self.frames_per_code + self.lookahead]
        style = self.style_embedding(style)
        pairs = self.window_pairs(speech)
        apex_logits = self.apex_logits(pairs, style)
        logits = self.span_logits(self.code_context(pairs, plan.to(speech.dtype)), style,
                                  self.known_latents(codebooks, codes))
        return logits, apex_logits


def masking_ratio(u: torch.Tensor) -> torch.Tensor:
    """MaskGIT's cosine schedule: the share of a span hidden for uniform ``u`` in [0, 1)."""
    return torch.cos(0.5 * math.pi * u)


def span_mask(batch: int, codes: int, *, prefix: int, part_drop: float = 0.1, min_run: int = 2, max_run: int = 6,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, n, 4) bool, True = hidden: what stage 2 learns to fill.

    Each window's first ``prefix`` codes stand for the previous span's tail: a random number of
    them (0 to ``prefix``, ``prefix`` half the time) stays known, the rest is hidden. After them,
    per part, a share drawn from ``masking_ratio`` is hidden in runs of ``min_run``-``max_run``
    codes (0.27-0.8 s at 4 frames per code), so a hidden code's neighbours are mostly hidden too
    and it cannot be copied from them. Each part is hidden entirely with probability
    ``part_drop`` (as when the user switches it off)."""
    g = generator
    mask = torch.zeros(batch, codes, len(PARTS), dtype=torch.bool)
    for b in range(batch):
        full = torch.rand((), generator=g) < 0.5
        known = prefix if full else int(torch.randint(0, prefix + 1, (), generator=g))
        mask[b, known:prefix] = True
        span = codes - prefix
        for i in range(len(PARTS)):
            if torch.rand((), generator=g) < part_drop:
                mask[b, :, i] = True
                continue
            target = max(1, int(math.ceil(float(masking_ratio(torch.rand((), generator=g))) * span)))
            hidden = torch.zeros(span, dtype=torch.bool)
            while int(hidden.sum()) < target:
                run = int(torch.randint(min_run, max_run + 1, (), generator=g))
                start = int(torch.randint(0, span, (), generator=g))
                hidden[start:start + run] = True
            mask[b, prefix:, i] = hidden
    return mask


def generator_losses(logits: dict, codes: dict, hidden: torch.Tensor, apex_logits: torch.Tensor,
                     apex_target: torch.Tensor, apex_weight: float = 1.0) -> dict:
    """Cross-entropy of each part's code logits on its hidden codes (``hidden`` (B, n, 4)), plus
    ``apex_weight`` x binary cross-entropy of the stroke-apex logits against ``apex_target``
    (B, n r) in [0, 1]; per part and in total (``loss``)."""
    out = {}
    total = 0.0
    for i, part in enumerate(PARTS):
        if part not in logits:
            continue
        h = hidden[..., i]
        if not bool(h.any()):
            continue
        ce = F.cross_entropy(logits[part][h], codes[part][h])
        out[f"{part}_ce"] = ce
        total = total + ce
    apex = F.binary_cross_entropy_with_logits(apex_logits, apex_target)
    out["apex_bce"] = apex
    out["loss"] = total + apex_weight * apex
    return out
