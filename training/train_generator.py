"""Stage 2: speech -> per-part codes (``gestura train --data DIR --vq CKPT``).

The stage-1 VQ-VAEs are frozen; every training clip is encoded to codes once. The generator is
trained teacher-forced on windows: cross-entropy of each part's code logits plus ``--latent-weight``
x MSE of the regressed quantised latents (MambaTalk uses 3). The previous-frame latents it reads
are partly hidden behind the mask token, with a hidden fraction whose ceiling grows from
``--mask-start`` to ``--mask-max`` over the first ``--mask-ramp`` of training (the masking
schedule), and whole parts hidden with probability ``--part-drop`` (parts switched off). The
style embedding has one entry per speaker present in the data.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CommandError
from ..rigs.skeleton import PARTS
from .common import data_notes, load_data, log, model_config, training_stats
from .dataset import take_window, window_index
from .loop import LoopSpec, run_distributed, run_loop, seed_everything

CHECKPOINT_NAME = "gestura.safetensors"


class Stage2(nn.Module):
    """Frozen VQ-VAEs + the generator; ``forward`` returns the losses (DDP hooks forward)."""

    def __init__(self, model, latent_weight: float, switch_weight: float = 1.0):
        super().__init__()
        self.model = model
        self.latent_weight = latent_weight
        self.switch_weight = switch_weight
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith("generator."))

    def forward(self, features, style, codes: dict, mask):
        from ..inference.torch_model.generator import generator_losses

        latents = {p: self.model.vq[p].lookup(c).detach() for p, c in codes.items()}
        logits, regressed = self.model.generator(features, style, latents, mask)
        losses = generator_losses(
            {p: v.float() for p, v in logits.items()}, {p: v.float() for p, v in regressed.items()},
            codes, latents, self.latent_weight, self.switch_weight,
        )
        with torch.no_grad():
            for p in codes:
                losses[f"{p}_acc"] = (logits[p].argmax(-1) == codes[p]).float().mean()
        return losses


def read_vq(paths: list[str]):
    """{part: Checkpoint} choosing, for each part, the last given checkpoint that trained it."""
    from ..inference.checkpoint import CheckpointError, load_checkpoint

    chosen: dict = {}
    configs = []
    for path in paths:
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as error:
            raise CommandError(str(error)) from None
        trained = json.loads(ckpt.metadata.get("trained_parts", json.dumps(list(PARTS))))
        configs.append(ckpt.config.with_(num_styles=1))
        for part in trained:
            chosen[part] = ckpt
    if any(c != configs[0] for c in configs):
        raise CommandError("the --vq checkpoints have different model configs: train every part with the same --config/--set")
    missing = [p for p in PARTS if p not in chosen]
    if missing:
        raise CommandError(
            f"part(s) {', '.join(missing)} not trained in any --vq checkpoint: run gestura train-vq --part "
            f"{','.join(missing)} first (or --part all)"
        )
    return chosen


def main(args) -> int:
    return run_distributed(args, _train)


def _train(args, dist) -> int:
    from ..inference.checkpoint import CheckpointError
    from ..inference.torch_model.generator import random_prev_mask
    from ..inference.torch_model.model import GesturaModel

    seed_everything(args.seed)
    vq = read_vq(args.vq)
    data = load_data(args, dist, ("train",))
    log(dist, f"train: {data.describe()}")
    styles = data.styles
    base = next(iter(vq.values())).config
    # Generator fields may be overridden; VQ fields must match the stage-1 weights.
    config = model_config(args, len(styles), base=base)
    vq_fields = ("codebook_size", "code_dim", "vq_hidden", "vq_layers", "gmp_hidden", "gmp_layers", "feature_dim")
    changed = [f for f in vq_fields if getattr(config, f) != getattr(base, f)]
    if changed:
        raise CommandError(f"--set changes stage-1 fields {changed} that the --vq weights fix; leave them out")
    model = GesturaModel(config, with_generator=True)
    stats = training_stats(data)  # audio statistics and joint speeds from this data...
    with torch.no_grad():
        for part, ckpt in vq.items():  # ...part statistics from the VQ that learned them
            tensors = {k: v for k, v in ckpt.tensors.items() if k.startswith(f"vq.{part}.") or
                       (part == "lower" and k.startswith("gmp."))}
            own = model.state_dict()
            for name, value in tensors.items():
                own[name].copy_(torch.as_tensor(value))
            stats[f"{part}_mean"], stats[f"{part}_std"] = ckpt.stats[f"{part}_mean"], ckpt.stats[f"{part}_std"]
    device = dist.device
    model.to(device)
    stage = Stage2(model, args.latent_weight, args.switch_weight)

    # Codes of every clip, once (whole clips: the causal encoder sees what it sees at inference).
    feats, codes, style_ids = [], [], []
    with torch.no_grad():
        for clip in data.clips:
            feats.append(((clip.features - stats["audio_mean"]) / stats["audio_std"]).astype(np.float32))
            c = {}
            for p in PARTS:
                x = torch.from_numpy((clip.parts[p] - stats[f"{p}_mean"]) / stats[f"{p}_std"]).float()
                c[p] = model.vq[p].encode_codes(x.unsqueeze(0).to(device))[0].cpu().numpy()
            codes.append(c)
            style_ids.append(data.style_index(clip))
    usage = {p: len(np.unique(np.concatenate([c[p] for c in codes]))) for p in PARTS}
    log(dist, "train: codes in use per part " + ", ".join(f"{p} {n}/{config.codebook_size}" for p, n in usage.items()))

    length, look = args.window, config.lookahead
    stride = args.stride or max(length // 2, 1)
    index = window_index(data.clips, length, stride)

    def window_features(i: int, s: int) -> np.ndarray:
        f = feats[i][s : s + length + look]
        if len(f) < length + look:  # beyond the clip's end: zeros = the normalised mean, as at inference
            f = np.concatenate([f, np.zeros((length + look - len(f), f.shape[1]), np.float32)])
        return f

    def make_batch(items: np.ndarray, epoch: int) -> dict:
        rows = index[items]
        return {
            "features": torch.from_numpy(np.stack([window_features(c, s) for c, s in rows])).to(device),
            "style": torch.as_tensor([style_ids[c] for c, _ in rows], dtype=torch.long, device=device),
            "codes": {p: torch.from_numpy(np.stack([take_window(codes[c][p], s, length) for c, s in rows])).long().to(device)
                      for p in PARTS},
        }

    def mask_ceiling(step: int, total: int) -> float:
        ramp = max(args.mask_ramp * total, 1.0)
        return args.mask_start + (args.mask_max - args.mask_start) * min(step / ramp, 1.0)

    def loss(m, batch, gen, step, total):
        b = batch["style"].shape[0]
        ceiling = mask_ceiling(step, total)
        mask = random_prev_mask(b, length, max_ratio=ceiling, part_drop=args.part_drop, generator=gen).to(device)
        out = m(batch["features"], batch["style"], batch["codes"], mask)
        logs = {k: v.detach() for k, v in out.items() if k != "loss"}
        logs["mask_ceiling"] = ceiling
        return out["loss"], logs

    validate = None
    if args.val:
        val = load_data(args, dist, ("val",))
        if val.clips:
            validate = _validator(stage, val, stats, style_names=styles, length=length, device=device)
        else:
            log(dist, "train: no 'val' clips, no validation")

    out_dir = Path(args.out)

    def export(m, step) -> Path:
        try:
            return model.save(
                out_dir / CHECKPOINT_NAME, styles=styles, stats=stats, stage="full",
                extra_metadata={
                    "trained_steps": str(step),
                    "train_data": str(Path(args.data).resolve()),
                    "speakers": args.speakers,
                    "vq": json.dumps([str(Path(p).resolve()) for p in args.vq]),
                },
            )
        except CheckpointError as error:
            raise CommandError(str(error)) from None

    # A resumed run must train the same thing. The switch weight joined these settings later: at its
    # default it is left out, so states saved before it existed still resume.
    settings = [config.to_json(), styles, args.window, args.latent_weight]
    if args.switch_weight != 1.0:
        settings.append(args.switch_weight)
    spec = LoopSpec(
        name="train", model=stage, num_items=len(index), make_batch=make_batch, loss=loss, export=export,
        notes=data_notes(args, data),
        config_json=json.dumps(settings),
        validate=validate,
    )
    summary = run_loop(spec, args, dist)
    if dist.main:
        print(json.dumps({k: summary[k] for k in ("steps", "first", "last", "steps_per_s", "checkpoint")}))
    return 0


def _validator(stage: Stage2, val, stats, style_names, length, device):
    """Teacher-forced loss and code accuracy on the val split, nothing masked."""
    model = stage.model
    windows = []
    with torch.no_grad():
        for clip in val.clips:
            f = torch.from_numpy(((clip.features - stats["audio_mean"]) / stats["audio_std"]).astype(np.float32))
            c = {}
            for p in PARTS:
                x = torch.from_numpy((clip.parts[p] - stats[f"{p}_mean"]) / stats[f"{p}_std"]).float()
                c[p] = model.vq[p].encode_codes(x.unsqueeze(0).to(device))[0]
            style = style_names.index(clip.ref.style) if clip.ref.style in style_names else 0
            windows.append((f, c, style))

    def validate(m) -> dict:
        totals: dict = {}
        for f, c, style in windows:
            out = stage(f.unsqueeze(0).to(device), torch.tensor([style], device=device),
                        {p: v.unsqueeze(0) for p, v in c.items()}, None)
            for k, v in out.items():
                totals.setdefault(f"val_{k}", []).append(float(v))
        return {k: float(np.mean(v)) for k, v in totals.items()}

    return validate
