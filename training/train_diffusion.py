"""Stage 2 of the "dim-gestor" family: DiM-Gestor's diffusion model on frozen stage-1 weights
(``gestura train --family dim-gestor --data DIR --vq CKPT``).

Every training clip is encoded to codes once (as for the code generator) and each code becomes its
codebook latent; the four parts' latents side by side, normalised per channel by their mean and std
over the training clips (stored in the checkpoint as ``generator.latent_mean`` / ``latent_std``), are
what is diffused. A training window of ``prefix_codes + span_codes`` codes is noised to a uniform
time t in [0, 1] (``inference/diffusion.alpha_bar``) and the denoiser learns its clean latents
(MSE on the latents that are not given). As in generation, some latents are given: a random number
of the window's first ``prefix_codes`` codes (the previous window's tail; all of them half the
time, as the code generator's ``span_mask`` does), except for parts that are hidden whole with
probability ``--part-drop`` (switched off). The speaker is left out a third of the time
(``diffusion.STYLE_DROP``), so the model also works from the voice alone.

With ``--planner-from CKPT`` the model reads a stroke plan (``config.stroke_planner``): each window
hears the corpus's plan (``stroke_plan.apex_bumps`` of its apexes, as the code generator does), and
generation the plan of CKPT's stroke planner, which is copied in with its calibrated threshold, its
styles' stroke rates and the audio statistics it hears by, and stays frozen.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..inference.diffusion import alpha_bar
from ..rigs.skeleton import PARTS
from .common import data_notes, load_data, log
from .dataset import take_window, window_index
from .loop import LoopSpec, run_distributed, run_loop
from .train_generator import encode_clips, save_stage2, setup_stage2, speech_batch, speech_variants, window_features

VAL_TIMES = (0.1, 0.3, 0.5, 0.7, 0.9)  # noise levels of the fixed validation loss
VAL_WINDOWS = 64
LATENT_STD_FLOOR = 1e-3


class DiffusionStage(nn.Module):
    """Frozen VQ-VAEs + the diffusion generator; ``forward`` returns the losses (DDP hooks forward)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        # The stroke planner is another model's, trained on the apex loss alone.
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith("generator.") and not name.startswith("generator.planner."))

    def forward(self, features, style, x0, noise, t, mask, plan=None):
        """features (B, n r + L, F), style (B,) long (-1: none), clean normalised latents x0 (B, n, C),
        noise (B, n, C), times t (B,), known mask (B, n, 4), the corpus's stroke plan (B, n r) for a
        ``stroke_planner`` model -> {"loss": MSE of the unknown latents}."""
        gen = self.model.generator
        a = torch.from_numpy(alpha_bar(t.cpu().numpy())).to(x0)[:, None, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        predicted = gen(features, style, x_t, t, x0, mask, plan)
        unknown = 1.0 - mask.repeat_interleave(gen.config.code_dim, -1)
        error = (predicted.float() - x0) ** 2 * unknown
        return {"loss": error.sum() / unknown.sum().clamp(min=1.0)}


def main(args) -> int:
    return run_distributed(args, _train)


def clip_latents(codes: dict, codebooks: dict) -> np.ndarray:
    """{part: (n,) codes} -> (n, 4 D) codebook latents, parts side by side in PARTS order."""
    return np.concatenate([codebooks[p][codes[p]] for p in PARTS], -1).astype(np.float32)


def known_mask(batch: int, codes: int, prefix: int, part_drop: float, rng: np.random.Generator) -> np.ndarray:
    """(B, n, 4) float32, 1 = given: a random number of the first ``prefix`` codes (all of them half
    the time), none for a part hidden whole with probability ``part_drop``."""
    mask = np.zeros((batch, codes, len(PARTS)), np.float32)
    for b in range(batch):
        known = prefix if rng.random() < 0.5 else int(rng.integers(0, prefix + 1))
        mask[b, :known] = 1.0
        mask[b, :, rng.random(len(PARTS)) < part_drop] = 0.0
    return mask


def _train(args, dist) -> int:
    from ..inference.torch_model.diffusion import STYLE_DROP

    setup = setup_stage2(args, dist, "dim-gestor")
    model, config, data, stats, length, device = (setup.model, setup.config, setup.data, setup.stats,
                                                   setup.length, setup.device)
    styles = data.styles
    r, prefix = config.frames_per_code, config.prefix_codes
    feats, codes, plans = encode_clips(model, data.clips, stats, device)
    planned = config.stroke_planner
    codebooks = {p: w.detach().cpu().numpy() for p, w in model.codebooks().items()}
    latents = [clip_latents(c, codebooks) for c in codes]
    every = np.concatenate(latents)
    mean, std = every.mean(0), np.maximum(every.std(0), LATENT_STD_FLOOR)
    with torch.no_grad():
        model.generator.latent_mean.copy_(torch.from_numpy(mean))
        model.generator.latent_std.copy_(torch.from_numpy(std))
    latents = [((x - mean) / std).astype(np.float32) for x in latents]
    style_ids = [data.style_index(clip) for clip in data.clips]
    log(dist, f"train: {config.denoiser_block} denoiser, {config.denoiser_layers} blocks; latents of "
              f"{config.latent_dim} channels from {len(every)} codes"
              + (f"; reads a stroke plan, made in generation by the planner of {setup.lineage['planner_from']}" if planned else ""))
    stage = DiffusionStage(model)

    stride = args.stride or max(length // 2, 1)
    index = window_index(data.clips, length, stride)
    n_codes = length // r

    variants = speech_variants(args, dist, data.clips, stats)

    def make_batch(items: np.ndarray, epoch: int) -> dict:
        rng = np.random.default_rng([args.seed, epoch, int(items[0])])
        starts, batch = speech_batch(index[items], feats, style_ids, config, length, device, variants, rng)
        out = {
            **batch,
            "x0": torch.from_numpy(np.stack([take_window(latents[c], k, n_codes) for c, k in starts])).to(device),
        }
        if planned:
            out["plan"] = torch.from_numpy(np.stack([take_window(plans[c], k * r, length) for c, k in starts])).to(device)
        return out

    def loss(m, batch, gen, step, total):
        b = batch["style"].shape[0]
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (), generator=gen)))
        style = batch["style"].masked_fill(torch.from_numpy(rng.random(b) < STYLE_DROP).to(device), -1)
        noise = torch.randn(batch["x0"].shape, generator=gen).to(device)
        t = torch.rand(b, generator=gen).to(device)
        mask = torch.from_numpy(known_mask(b, n_codes, prefix, args.part_drop, rng)).to(device)
        out = m(batch["features"], style, batch["x0"], noise, t, mask, batch.get("plan"))
        return out["loss"], {}

    validate = None
    val = load_data(args, dist, ("val",)) if args.val else None
    if val is not None:
        if val.clips:
            validate = _validator(stage, val, stats, styles, codebooks, mean, std, n_codes, device)
        else:
            log(dist, "train: no 'val' clips, no validation")

    def export(m, step) -> Path:
        return save_stage2(model, args, styles, stats, step, setup.lineage)

    # A resumed run must train the same thing (--audio-augment only when used, so that states
    # written before the option existed still resume).
    settings = [config.to_json(), styles, length, args.part_drop] + ([args.audio_augment] if args.audio_augment else [])
    spec = LoopSpec(
        name="train", model=stage, num_items=len(index), make_batch=make_batch, loss=loss, export=export,
        notes=data_notes(args, data), config_json=json.dumps(settings), validate=validate,
    )
    summary = run_loop(spec, args, dist)
    if dist.main:
        print(json.dumps({k: summary[k] for k in ("steps", "first", "last", "steps_per_s", "checkpoint")}))
    return 0


def _validator(stage: DiffusionStage, val, stats, style_names, codebooks, mean, std, n_codes: int, device):
    """Denoising loss on the val split: up to VAL_WINDOWS windows with their prefix given, at the
    noise levels VAL_TIMES, with noise fixed once, so runs compare."""
    model = stage.model
    config = model.config
    r, look, prefix = config.frames_per_code, config.lookahead, config.prefix_codes
    feats, codes, plans = encode_clips(model, val.clips, stats, device)
    windows = []
    for i, clip in enumerate(val.clips):
        style = style_names.index(clip.ref.style) if clip.ref.style in style_names else -1
        x = (clip_latents(codes[i], codebooks) - mean) / std
        for k in range(0, len(x) - n_codes + 1, n_codes):
            plan = take_window(plans[i], k * r, n_codes * r) if config.stroke_planner else None
            windows.append((window_features(feats[i], k * r, n_codes * r + look), x[k:k + n_codes], style, plan))
    windows = windows[:VAL_WINDOWS]
    rng = np.random.default_rng(0)
    noises = [rng.standard_normal((len(VAL_TIMES), n_codes, config.latent_dim)).astype(np.float32) for _ in windows]
    mask = np.zeros((len(VAL_TIMES), n_codes, len(PARTS)), np.float32)
    mask[:, :prefix] = 1.0

    def validate(m) -> dict:
        losses = []
        for (f, x, style, plan), noise in zip(windows, noises):
            b = len(VAL_TIMES)
            out = stage(torch.from_numpy(f)[None].expand(b, -1, -1).to(device),
                        torch.full((b,), style, dtype=torch.long, device=device),
                        torch.from_numpy(np.asarray(x, np.float32))[None].expand(b, -1, -1).to(device),
                        torch.from_numpy(noise).to(device), torch.tensor(VAL_TIMES, device=device),
                        torch.from_numpy(mask).to(device),
                        None if plan is None else torch.from_numpy(plan)[None].expand(b, -1).to(device))
            losses.append(float(out["loss"]))
        return {"val_loss": float(np.mean(losses))}

    return validate
