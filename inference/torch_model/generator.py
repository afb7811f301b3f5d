"""Stage 2: speech features -> per-part motion codes, with Mamba scans only (nothing quadratic).

Structure (names as in ``architecture.py``):
- speech encoder: ``audio_in`` then ``speech`` Mamba blocks over the audio features;
- style: a learned speaker embedding added to the speech encoding (their mean for the
  speaker-neutral stream that style strength contrasts with, ``sampling.guided_logits``);
- global scan: ``global_blocks`` + ``global_norm`` -> one context vector per audio frame;
- local scans: for each part, ``prev_in.P`` reads the previous frame's latents of ALL parts (the
  part reads the others' latents), adds the context of frame ``t + lookahead``, runs the part's
  own Mamba stack ``local.P`` and ends in two heads: ``logits.P`` (code logits, cross-entropy
  against the VQ codes) and ``latent.P`` (regressed quantised latent, MSE).

Causality: the context at audio frame ``j`` depends on audio frames ``<= j`` only, and motion
frame ``t`` reads the context of frame ``t + lookahead``: a fixed audio look-ahead. Previous
latents make the local scans autoregressive over codes, which keeps sampled motion coherent.
Training is teacher-forced (previous latents = the ground truth's, partly replaced by the
``mask_latent`` token: "masked seed frames"); generation runs the same scans one frame at a time
(``local_step``), so chunked generation with carried state equals whole-clip generation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...rigs.skeleton import PARTS
from .layers import RMSNorm
from .mamba import MambaBlock, MambaStack


class Generator(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        d, cd, k = config.d_model, config.code_dim, config.codebook_size
        self.lookahead = config.lookahead
        self.audio_in = nn.Linear(config.feature_dim, d)
        self.speech = MambaStack(MambaBlock(config) for _ in range(config.speech_layers))
        self.style = nn.Embedding(config.num_styles, d)
        nn.init.normal_(self.style.weight, std=0.02)
        self.global_blocks = MambaStack(MambaBlock(config) for _ in range(config.global_layers))
        self.global_norm = RMSNorm(d)
        self.mask_latent = nn.Parameter(torch.randn(len(PARTS), cd) * 0.02)
        self.prev_in = nn.ModuleDict({p: nn.Linear(len(PARTS) * cd, d) for p in PARTS})
        self.local = nn.ModuleDict({p: MambaStack(MambaBlock(config) for _ in range(config.local_layers[p]))
                                    for p in PARTS})
        self.out_norm = nn.ModuleDict({p: RMSNorm(d) for p in PARTS})
        self.logits = nn.ModuleDict({p: nn.Linear(d, k) for p in PARTS})
        self.latent = nn.ModuleDict({p: nn.Linear(d, cd) for p in PARTS})

    # --- the code-independent half: speech, style, global scan -------------------------------
    def context(self, features: torch.Tensor, style: torch.Tensor, state=None):
        """features (B, T, F) normalised, style (B,) long -> context (B, T, d), state.

        One context vector per audio frame, causal; motion frame t uses context frame t + lookahead."""
        s_speech, s_global = state if state is not None else (None, None)
        s, s_speech = self.speech.run(self.audio_in(features), s_speech)
        g = s + self.style_embedding(style).unsqueeze(1)
        g, s_global = self.global_blocks.run(g, s_global)
        return self.global_norm(g), (s_speech, s_global)

    def style_embedding(self, style: torch.Tensor | None) -> torch.Tensor:
        """(B, d) speaker embeddings of style indices (B,); None: their mean (1, d), no speaker."""
        if style is None:
            return self.style.weight.mean(0, keepdim=True)
        return self.style(style)

    # --- the autoregressive half: per-part local scans -----------------------------------------
    def local_scan(self, context: torch.Tensor, prev_latents: torch.Tensor, parts=PARTS, state=None,
                   with_latent: bool = True):
        """context (B, T, d) already aligned to motion frames, prev_latents (B, T, 4, D) ->
        ({part: logits (B, T, K)}, {part: latent (B, T, D)}, state {part: ...})."""
        b, t = prev_latents.shape[:2]
        flat = prev_latents.reshape(b, t, -1)
        state = state if state is not None else {}
        logits, latents, new_state = {}, {}, {}
        for part in parts:
            x = context + self.prev_in[part](flat)
            x, new_state[part] = self.local[part].run(x, state.get(part))
            x = self.out_norm[part](x)
            logits[part] = self.logits[part](x)
            if with_latent:
                latents[part] = self.latent[part](x)
        return logits, latents, new_state

    def local_step(self, context_t: torch.Tensor, prev_latents_t: torch.Tensor, parts=PARTS, state=None):
        """One frame: context_t (B, d), prev_latents_t (B, 4, D) -> ({part: logits (B, K)}, state)."""
        logits, _, state = self.local_scan(context_t.unsqueeze(1), prev_latents_t.unsqueeze(1), parts, state,
                                           with_latent=False)
        return {p: v[:, 0] for p, v in logits.items()}, state

    def previous_latents(self, latents: dict, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing input: {part: (B, T, D)} quantised latents -> (B, T, 4, D) where frame t
        holds frame t-1's latents; frame 0, parts missing from ``latents`` and entries where
        ``mask`` (B, T, 4) is True get ``mask_latent``."""
        any_latent = next(iter(latents.values()))
        b, t, cd = any_latent.shape
        token = self.mask_latent.to(any_latent.dtype)
        out = token.view(1, 1, len(PARTS), cd).expand(b, t, len(PARTS), cd).clone()
        for i, part in enumerate(PARTS):
            if part in latents and t > 1:
                out[:, 1:, i] = latents[part][:, :-1]
        if mask is not None:
            out = torch.where(mask.unsqueeze(-1), token.view(1, 1, len(PARTS), cd).expand_as(out), out)
        return out

    def align_features(self, features: torch.Tensor, frames: int) -> torch.Tensor:
        """Features for ``frames`` motion frames plus the look-ahead: pads zeros (the normalised
        mean) beyond the end when the caller gave no audio after the last frame."""
        need = frames + self.lookahead
        if features.shape[1] < need:
            pad = features.new_zeros(features.shape[0], need - features.shape[1], features.shape[2])
            features = torch.cat([features, pad], 1)
        return features[:, :need]

    def forward(self, features: torch.Tensor, style: torch.Tensor, latents: dict, mask: torch.Tensor | None = None):
        """Teacher-forced training pass.

        features (B, T or T + lookahead, F) normalised audio features of the clip (give the
        look-ahead frames after the crop when you have them); style (B,) long; latents
        {part: (B, T, D)} ground-truth quantised latents (``vq[part].lookup(codes)``, detached);
        mask (B, T, 4) bool: previous-latent entries to hide (``random_prev_mask``).
        Returns ({part: logits (B, T, K)}, {part: regressed latent (B, T, D)})."""
        frames = next(iter(latents.values())).shape[1]
        context, _ = self.context(self.align_features(features, frames), style)
        context = context[:, self.lookahead:self.lookahead + frames]
        logits, regressed, _ = self.local_scan(context, self.previous_latents(latents, mask))
        return logits, regressed


def random_prev_mask(batch: int, frames: int, *, max_ratio: float = 0.6, part_drop: float = 0.1,
                     keep_first: int = 0, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """(B, T, 4) bool mask for teacher forcing: each sequence hides a random fraction (uniform in
    [0, max_ratio]) of its previous-latent entries, and each part is hidden entirely with
    probability ``part_drop`` (as when the user switches it off). Frames ``< keep_first``
    (seed frames) are never hidden."""
    ratio = torch.rand(batch, 1, 1, generator=generator, device=device) * max_ratio
    mask = torch.rand(batch, frames, len(PARTS), generator=generator, device=device) < ratio
    drop = torch.rand(batch, 1, len(PARTS), generator=generator, device=device) < part_drop
    mask = mask | drop
    if keep_first:
        mask[:, :keep_first] = False
    return mask


def generator_losses(logits: dict, regressed: dict, codes: dict, latents: dict, latent_weight: float = 3.0,
                     switch_weight: float = 1.0) -> dict:
    """Cross-entropy of the code logits and ``latent_weight`` x MSE of the regressed latents,
    per part and in total (``loss``). ``switch_weight`` weighs the cross-entropy of frames whose
    code differs from the previous frame's: with one code per frame most frames repeat the last
    code, and those frames teach nothing about when the motion should change."""
    out = {}
    total = 0.0
    for part in logits:
        if switch_weight == 1.0:
            ce = F.cross_entropy(logits[part].flatten(0, 1), codes[part].flatten())
        else:
            frame_ce = F.cross_entropy(logits[part].flatten(0, 1), codes[part].flatten(), reduction="none")
            c = codes[part]
            switched = torch.zeros_like(c, dtype=frame_ce.dtype)
            switched[:, 1:] = (c[:, 1:] != c[:, :-1]).to(frame_ce.dtype)
            weight = (1.0 + (switch_weight - 1.0) * switched).flatten()
            ce = (frame_ce * weight).sum() / weight.sum()
        mse = F.mse_loss(regressed[part], latents[part])
        out[f"{part}_ce"] = ce
        out[f"{part}_latent"] = mse
        total = total + ce + latent_weight * mse
    out["loss"] = total
    return out
