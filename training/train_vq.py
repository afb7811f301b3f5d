"""Stage 1: the part VQ-VAEs and the global motion predictor (``gestura train-vq``).

Losses per part (MODEL.md), on windows of normalised part features:
- reconstruction: MSE of the normalised features (all channels: rot6d, expressions, root
  channels, foot contacts);
- rotation: geodesic angle between reconstructed and true joint rotations (rot6d channels,
  de-normalised and orthonormalised);
- velocity, acceleration and jerk: L1 between first / second / third time differences (all
  channels);
- VQ: ||z_q - sg(z)||^2 + commitment ||z - sg(z_q)||^2 (the model computes it);
- foot skate (lower): world-space speed of the reconstructed foot joints on frames where the
  data has them in contact, through forward kinematics of the leg chains;
- the global motion predictor (trained whenever the lower body is): L1 on the normalised root
  channels and on their frame-to-frame change.
Codebook perplexity and dead codes are logged per part; ``--reset-dead N`` re-seeds codes unused
for N steps with encoder outputs of the current batch.

``--decoder-only`` fine-tunes the decoders (``up`` and the decoder convolutions) of an ``--init``
model with its encoders, codebooks, global motion predictor and statistics frozen: every clip
keeps its codes, so a stage-2 generator trained on them stays valid, and a full ``--init``
checkpoint comes out as a full checkpoint with its generator (``gestura.safetensors``).
``--plan-decoders`` adds to that fine-tune what makes the upper-body and hand decoders read the
stroke plan (``config.plan_decoders``, ``vq.P.plan_in``, started at zero so that training starts
from the --init model's motion); they read ``stroke_plan.apex_bumps`` of the data's stroke apexes,
as the span generator does in training.
``--decoder-lookahead L`` trains the decoders of ``--part`` to look L frames ahead
(``config.decoder_lookahead``): each one's output at frame t + L is compared with frame t.
``--code-noise S`` lets the decoders read a share S of their codes swapped for a near code
(``near_code_swaps``), so that they smooth over the codes a sampled sequence gets wrong.
``--denoised T`` (a dim-gestor ``--init``) lets the decoders read, in place of each window's
codebook entries, the frozen diffusion model's own reconstruction of them from time T
(``denoised_latents``), the previous window's tail of ``prefix_codes`` codes given and the style
and the plan guided as in generation.
"""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CommandError
from ..rigs.skeleton import FPS, LOWER_CONTACTS, LOWER_JOINTS, LOWER_ROOT, LOWER_ROT6D, PARTS
from .common import (
    ROT6D_CHANNELS, data_notes, geodesic, load_data, log, model_config, parts_list, rot6d_to_matrix, training_stats,
)
from .dataset import take_window, window_index
from .denoised_latents import DenoiserInputs
from .ema import checkpoint_metadata
from .loop import LoopSpec, run_distributed, run_loop, seed_everything

CHECKPOINT_NAME = "vq.safetensors"
FULL_CHECKPOINT_NAME = "gestura.safetensors"  # --decoder-only on a full --init: the generator kept
# Leg chains inside the lower part's joint order (LOWER_JOINTS = 0,1,2,4,5,7,8,10,11).
_LOWER_INDEX = {j: i for i, j in enumerate(LOWER_JOINTS)}
_LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))
_FEET = (7, 8, 10, 11)  # contact channel order
CODE_NOISE_NEIGHBOURS = 8  # the nearest codes a ``--code-noise`` swap picks from
# What ``--decoder-only`` trains of each PartVQVAE: what turns codes into frames.
DECODER_MODULES = ("up", "plan_in", "decoder")


def _vq_part_module(name: str) -> tuple:
    """"vq.upper.decoder.0.weight" -> ("upper", "decoder"); (None, None) outside the VQ-VAEs."""
    fields = name.split(".")
    return (fields[1], fields[2]) if fields[0] == "vq" and len(fields) > 3 else (None, None)


class Stage1(nn.Module):
    """The trainable part of stage 1; ``forward`` returns the loss terms (DDP hooks forward)."""

    def __init__(self, model, parts, stats: dict, weights: dict, train_gmp: bool, decoder_only: bool = False,
                 code_noise: float = 0.0):
        super().__init__()
        self.model = model
        self.code_noise = code_noise
        self.parts = tuple(parts)
        self.train_gmp = train_gmp and not decoder_only
        self.weights = weights
        for p in PARTS:
            self.register_buffer(f"mean_{p}", torch.as_tensor(stats[f"{p}_mean"]), persistent=False)
            self.register_buffer(f"std_{p}", torch.as_tensor(stats[f"{p}_std"]), persistent=False)
        from ..rigs.rest_skeleton import default_rest_joints

        self.register_buffer("rest", torch.as_tensor(default_rest_joints(), dtype=torch.float32), persistent=False)
        modules = DECODER_MODULES if decoder_only else None
        for name, param in model.named_parameters():
            part, module = _vq_part_module(name)
            trained = (part in self.parts and (modules is None or module in modules)) or (
                self.train_gmp and name.startswith("gmp."))
            param.requires_grad_(trained)
        self.last: dict = {}

    def denorm(self, part: str, x: torch.Tensor) -> torch.Tensor:
        return x * getattr(self, f"std_{part}") + getattr(self, f"mean_{part}")

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """The loss terms of one batch; ``generator`` draws the ``code_noise`` swaps."""
        total = 0.0
        logs: dict = {}
        self.last = {}
        w = self.weights
        for part in self.parts:
            x = batch[part]
            vq = self.model.vq[part]
            swap = None
            if self.code_noise > 0 and self.training:
                swap = partial(near_code_swaps, codebook=vq.codebook.weight.detach(), share=self.code_noise,
                               generator=generator)
            if "decoder_latents" in batch:  # --denoised: the diffusion model's latents, no encoder
                recon, _ = vq.decode(batch["decoder_latents"][part], None, batch.get("plan"))
                out = {"recon": recon, "vq_loss": recon.new_zeros(())}
            else:
                out = vq(x, batch.get("plan"), swap)
            r = out["recon"].float()
            look = self.model.config.decoder_lookahead[part]
            if look:  # the decoder's output at frame t + look is frame t (config.decoder_lookahead)
                r, x = r[:, look:], x[:, :-look]
            nrot = ROT6D_CHANNELS[part]
            b, t, _ = x.shape
            rot_true = rot6d_to_matrix(self.denorm(part, x)[..., :nrot].reshape(b, t, -1, 6))
            rot_pred = rot6d_to_matrix(self.denorm(part, r)[..., :nrot].reshape(b, t, -1, 6))
            rot = geodesic(rot_pred, rot_true).mean()
            # MSE on the normalised features weighs every channel alike (a jaw that moves 0.05 rad
            # matters as much as an elbow that moves 1 rad); the geodesic term adds the true
            # angular error; expressions, root channels and contacts are only in the MSE.
            rec = F.mse_loss(r, x)
            vel = F.l1_loss(r[:, 1:] - r[:, :-1], x[:, 1:] - x[:, :-1])
            acc = F.l1_loss(r[:, 2:] - 2 * r[:, 1:-1] + r[:, :-2], x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2])
            loss = w["rec"] * rec + w["rot"] * rot + w["vel"] * vel + w["acc"] * acc + out["vq_loss"].float()
            if w["jerk"] > 0:
                # Third differences: what the jitter metric measures. A causal decoder cannot
                # anticipate a code before its first frame; this term makes it ease into it.
                jerk = F.l1_loss(r.diff(n=3, dim=1), x.diff(n=3, dim=1))
                loss = loss + w["jerk"] * jerk
                logs[f"{part}_jerk"] = jerk.detach()
            logs[f"{part}_rot"] = rot.detach()
            logs[f"{part}_rec"] = rec.detach()
            logs[f"{part}_vq"] = out["vq_loss"].detach()
            if part == "lower" and w["foot"] > 0:
                skate = self.foot_skate(self.denorm("lower", r), self.denorm("lower", x)[..., LOWER_CONTACTS])
                loss = loss + w["foot"] * skate
                logs["lower_foot_skate"] = skate.detach()
            total = total + loss
            if "codes" in out:
                self.last[part] = (out["codes"].detach(), out["z"].detach())
        if self.train_gmp:
            lower = batch["lower"]
            pred, _ = self.model.gmp(lower)
            target = lower[..., LOWER_ROOT]
            gmp = F.l1_loss(pred, target) + F.l1_loss(pred[:, 1:] - pred[:, :-1], target[:, 1:] - target[:, :-1])
            total = total + gmp
            logs["gmp_loss"] = gmp.detach()
        return total, logs

    def foot_skate(self, lower: torch.Tensor, contacts: torch.Tensor) -> torch.Tensor:
        """Mean world speed (m/s) of the 4 foot joints on frames the data marks as contact."""
        b, t, _ = lower.shape
        rot = rot6d_to_matrix(lower[..., LOWER_ROT6D].reshape(b, t, 9, 6))
        rest = self.rest
        feet = {}
        for chain in _LEGS:
            g = rot[:, :, _LOWER_INDEX[0]]
            pos = torch.zeros(b, t, 3, device=lower.device, dtype=lower.dtype)
            parent = 0
            for joint in chain:
                pos = pos + (g @ (rest[joint] - rest[parent]).unsqueeze(-1)).squeeze(-1)
                feet[joint] = pos
                g = g @ rot[:, :, _LOWER_INDEX[joint]]
                parent = joint
        rel = torch.stack([feet[j] for j in _FEET], dim=2)  # (B, T, 4, 3) relative to the pelvis
        x_vel, height, z_vel = (lower[..., channel] for channel in range(LOWER_ROOT.start, LOWER_ROOT.stop))
        root_v = torch.stack([x_vel[:, 1:], (height[:, 1:] - height[:, :-1]) * FPS, z_vel[:, 1:]], dim=-1)
        v = (rel[:, 1:] - rel[:, :-1]) * FPS + root_v.unsqueeze(2)
        speed = torch.sqrt((v * v).sum(-1) + 1e-8)
        c = (contacts[:, 1:] > 0.5).to(speed.dtype)
        return (speed * c).sum() / c.sum().clamp(min=1.0)


class CodebookMonitor:
    """Counts code use per part; reports perplexity and dead codes; optionally re-seeds dead codes."""

    def __init__(self, stage: Stage1, size: int, dist, reset_every: int, seed: int):
        self.stage, self.size, self.dist = stage, size, dist
        self.reset_every, self.seed = reset_every, seed
        self.window = {p: torch.zeros(size, dtype=torch.float64) for p in stage.parts}  # since last log
        self.since_reset = {p: torch.zeros(size, dtype=torch.float64) for p in stage.parts}
        self.resets = 0

    def __call__(self, model, batch, step: int) -> dict:
        logs = {}
        for part, (codes, _) in self.stage.last.items():
            counts = torch.bincount(codes.flatten().cpu(), minlength=self.size).double()
            self.window[part] += counts
            self.since_reset[part] += counts
            p = counts / counts.sum()
            logs[f"{part}_perplexity"] = float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
        if self.reset_every and step % self.reset_every == 0:
            logs.update(self.reset_dead(step))
        return logs

    def dead_codes(self) -> dict:
        """Codes unused since the last call, per part (then counting starts again)."""
        out = {}
        for part, counts in self.window.items():
            counts = counts.clone()
            if self.dist.enabled:
                torch.distributed.all_reduce(counts)
            out[part] = int((counts == 0).sum())
            self.window[part].zero_()
        return out

    def state_tensors(self) -> dict:
        return {f"since_reset.{p}": c for p, c in self.since_reset.items()}

    def load_state_tensors(self, tensors: dict) -> None:
        for p in self.since_reset:
            if f"since_reset.{p}" in tensors:
                self.since_reset[p] = tensors[f"since_reset.{p}"].double().clone()

    @torch.no_grad()
    def reset_dead(self, step: int) -> dict:
        logs = {}
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        for part, (_, z) in self.stage.last.items():
            counts = self.since_reset[part].clone()
            if self.dist.enabled:
                torch.distributed.all_reduce(counts)
            dead = torch.nonzero(counts == 0).flatten()
            self.since_reset[part].zero_()
            book = self.stage.model.vq[part].codebook.weight
            if len(dead):
                pool = z.reshape(-1, z.shape[-1]).float().cpu()
                pick = torch.randint(len(pool), (len(dead),), generator=gen)
                noise = 0.01 * pool.std() * torch.randn(len(dead), pool.shape[1], generator=gen)
                book.data[dead.to(book.device)] = (pool[pick] + noise).to(book.device, book.dtype)
            if self.dist.enabled:  # every process continues with the main process's codebook
                torch.distributed.broadcast(book.data, src=0)
            logs[f"{part}_reset"] = float(len(dead))
        self.resets += 1
        return logs


def near_code_swaps(codes: torch.Tensor, codebook: torch.Tensor, share: float,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """``codes`` (any shape, long) with a random ``share`` of them replaced by one of their
    ``CODE_NOISE_NEIGHBOURS`` nearest other codes in ``codebook`` (K, D) (Euclidean), drawn
    uniformly (dead codes included: a generator can sample them too). Meant to stand for the
    near codes a sampled sequence flickers to, which a decoder trained only on the encoder's
    codes turns into jerks (``--code-noise``; MODEL_CARD.md, "Decoders that look ahead and
    forgive a flickering code")."""
    distance = torch.cdist(codebook, codebook)
    distance.fill_diagonal_(float("inf"))
    near = distance.topk(min(CODE_NOISE_NEIGHBOURS, len(codebook) - 1), largest=False).indices
    draw = torch.rand(codes.shape, generator=generator).to(codes.device)
    pick = torch.randint(near.shape[1], codes.shape, generator=generator).to(codes.device)
    return torch.where(draw < share, near[codes, pick], codes)


def _with_decoder_lookahead(config, frames: int | None, parts: list):
    """``config`` with the decoders of ``parts`` looking ``frames`` ahead (None: as they are);
    CommandError outside 0 to ``frames_per_code``."""
    if frames is None:
        return config
    if not 0 <= frames <= config.frames_per_code:
        raise CommandError(f"--decoder-lookahead must be 0 to frames_per_code ({config.frames_per_code}) frames, got {frames}")
    return config.with_(decoder_lookahead={**config.decoder_lookahead, **{p: frames for p in parts}})


def main(args) -> int:
    return run_distributed(args, _train)


def _train(args, dist) -> int:
    from ..inference.torch_model.model import GesturaModel

    seed_everything(args.seed)
    parts = parts_list(args.part)
    train_gmp = "lower" in parts
    init = _load_init(args)
    # Options are checked before any clip is read: on BEAT2 reading takes minutes.
    if not 0.0 <= args.code_noise < 1.0:
        raise CommandError(f"--code-noise is the share of codes swapped, from 0 up to (not including) 1, "
                           f"got {args.code_noise}")
    if args.decoder_only:
        # The codes must not move: the same config, normalisation and codebooks as --init.
        config = _with_decoder_lookahead(init.config.with_(plan_decoders=init.config.plan_decoders or args.plan_decoders),
                                         args.decoder_lookahead, parts)
        stats = dict(init.stats)
        moved = [p for p in parts if config.decoder_lookahead[p] != init.config.decoder_lookahead[p]]
        if moved:  # the decoders start off by the difference and must learn it, so say so
            log(dist, "train-vq: the decoders of " + ", ".join(
                f"{p} look {config.decoder_lookahead[p]} frames ahead (--init's {init.config.decoder_lookahead[p]})"
                for p in moved))
    stride = args.stride or max(args.window // 2, 1)
    if args.denoised is not None:
        r, prefix = config.frames_per_code, config.prefix_codes
        if args.window <= prefix * r or stride % r:
            raise CommandError(f"--denoised gives each window its first {prefix} codes as generation does: use a "
                               f"--window of more than {prefix * r} frames and a --stride that is a multiple of {r}")
    data = load_data(args, dist, ("train",))
    log(dist, f"train-vq: {data.describe()}")
    if not args.decoder_only:
        stats = training_stats(data)
        config = _with_decoder_lookahead(model_config(args, len(data.styles)), args.decoder_lookahead, parts)
    denoised = args.denoised is not None
    model = GesturaModel(config, with_generator=denoised)
    trained_before: list[str] = []
    if init is not None:
        # (--decoder-only takes the --init config itself, --plan-decoders its one change.)
        theirs, ours = (c.for_styles(config.num_styles).to_dict() for c in (init.config, config))
        differ = [name for name, value in ours.items() if theirs.get(name) != value]
        if not args.decoder_only and differ:
            raise CommandError(f"--init {args.init} has another model config ({', '.join(differ)} differ): use its "
                               "--config/--set, or --decoder-only to tune that model's decoders")
        with torch.no_grad():
            # --denoised: the diffusion generator too, frozen (Stage1 trains decoders only)
            model.load_tensors({**_zero_plan_in(model), **init.tensors}, "full" if denoised else "vq")
        trained_before = json.loads(init.metadata.get("trained_parts", "[]"))
        if not args.decoder_only:
            stats = {**stats, **{k: v for k, v in init.stats.items() if k.split("_")[0] not in parts and k in stats}}
    weights = {"rec": args.w_rec, "rot": args.w_rot, "vel": args.w_vel, "acc": args.w_acc, "jerk": args.w_jerk,
               "foot": args.w_foot}
    stage = Stage1(model, parts, stats, weights, train_gmp, decoder_only=args.decoder_only,
                   code_noise=args.code_noise)
    # What the run trains on, in one line: a copied command that drops a loss weight shows here.
    log(dist, f"train-vq: {'the decoders' if args.decoder_only else 'the VQ-VAEs'} of {', '.join(parts)}; loss weights "
        + " ".join(f"{name} {value:g}" for name, value in weights.items())
        + (f"; code noise {args.code_noise:g}" if args.code_noise else ""))

    length = args.window
    if length % config.frames_per_code:
        raise CommandError(f"--window {length} is not a whole number of codes: use a multiple of "
                           f"frames_per_code ({config.frames_per_code})")
    if args.denoised is not None:
        unknown = sorted({c.ref.style for c in data.clips} - set(init.styles))
        if unknown:
            raise CommandError(f"--data has speakers {', '.join(unknown)} that --init {args.init} was not trained on: "
                               "choose them out with --speakers")
    index = window_index(data.clips, length, stride)
    normalised = [
        {p: (c.parts[p] - stats[f"{p}_mean"]) / stats[f"{p}_std"] for p in parts} for c in data.clips
    ]
    plans = _stroke_plans(data.clips, args.data) if config.plan_decoders else None
    device = dist.device
    heard = DenoiserInputs(model, init, data.clips, length, device) if denoised else None

    def make_batch(items: np.ndarray, epoch: int) -> dict:
        rows = index[items]
        batch = {
            p: torch.from_numpy(np.stack([take_window(normalised[c][p], s, length) for c, s in rows])).to(device)
            for p in parts
        }
        if plans is not None:
            batch["plan"] = torch.from_numpy(np.stack([take_window(plans[c], s, length) for c, s in rows])).to(device)
        if heard is not None:
            batch.update(heard.batch(rows))
        return batch

    def loss(m, batch, gen, step, total):
        if heard is not None:
            batch = {**batch, "decoder_latents": heard.decoder_latents(batch, args.denoised, gen)}
        return m(batch, gen)

    # Re-seeding dead codes would move codes that a frozen codebook must keep.
    monitor = CodebookMonitor(stage, config.codebook_size, dist, 0 if args.decoder_only else args.reset_dead, args.seed)

    def after_step(m, batch, step):
        logs = monitor(m, batch, step)
        if step % args.log_every == 0 and not denoised:  # (--denoised reads no codes)
            logs.update({f"{p}_dead_codes": float(v) for p, v in monitor.dead_codes().items()})
        return logs

    out = Path(args.out)
    all_trained = sorted(set(trained_before) | set(parts), key=PARTS.index)

    def export(m, step) -> Path:
        if args.decoder_only and init.stage == "full":
            return _save_with_decoders(init, model, parts, out / FULL_CHECKPOINT_NAME, step, args)
        return model.save(
            out / CHECKPOINT_NAME, styles=data.styles or ["default"], stats=stats, stage="vq",
            extra_metadata={
                "trained_parts": json.dumps(all_trained),
                "trained_steps": str(step),
                **checkpoint_metadata(args.ema),
                "train_data": str(Path(args.data).resolve()),
                "speakers": args.speakers,
            },
        )

    spec = LoopSpec(
        name="train-vq", model=stage, num_items=len(index), make_batch=make_batch,
        loss=loss, export=export,
        notes=data_notes(args, data),
        config_json=json.dumps([config.to_json(), list(parts), weights, args.window]),
        after_step=after_step,
        state_tensors=monitor.state_tensors, load_state_tensors=monitor.load_state_tensors,
    )
    summary = run_loop(spec, args, dist)
    if dist.main:
        print(json.dumps({k: summary[k] for k in ("steps", "first", "last", "steps_per_s", "checkpoint")}))
    return 0


def _zero_plan_in(model) -> dict:
    """Zero weights for the model's ``plan_in`` layers: added to an --init without them, the
    decoders start as the --init model's (the plan adds nothing until trained)."""
    return {name: np.zeros(tuple(value.shape), np.float32) for name, value in model.state_dict().items()
            if _vq_part_module(name)[1] == "plan_in"}


def _stroke_plans(clips, data) -> list:
    """Each clip's stroke plan (``stroke_plan.apex_bumps`` of its apexes), what plan-reading decoders
    learn from, or CommandError when a clip has none."""
    from ..inference.stroke_plan import apex_bumps

    missing = [c.ref.id for c in clips if c.stroke_apex is None]
    if missing:
        raise CommandError(f"--plan-decoders needs stroke apexes, and {len(missing)} clip(s) of --data {data} have "
                           f"none (e.g. {missing[0]}): use data made by gestura synth or with motion to derive them from")
    return [apex_bumps(c.stroke_apex) for c in clips]


def _load_init(args):
    """The ``--init`` checkpoint (None without one); ``--decoder-only`` needs one and no ``--set``."""
    from ..inference.checkpoint import CheckpointError, load_checkpoint

    if args.decoder_only and not args.init:
        raise CommandError("--decoder-only fine-tunes the decoders of an existing model: name it with --init")
    if args.decoder_only and args.set:
        raise CommandError("--decoder-only keeps the --init model's config: leave out --set")
    if args.denoised is not None and not args.decoder_only:
        raise CommandError("--denoised teaches the decoders of a trained diffusion model to read its latents: "
                           "add --decoder-only and name the model with --init")
    if args.denoised is not None and args.code_noise:
        raise CommandError("--code-noise swaps the codes the decoders read, and with --denoised they read the "
                           "diffusion model's latents instead: leave one out")
    if args.denoised is not None and not 0.0 < args.denoised <= 1.0:
        raise CommandError(f"--denoised is the noise level to denoise from, a time in (0, 1], got {args.denoised}")
    if args.plan_decoders and not args.decoder_only:
        raise CommandError("--plan-decoders teaches the decoders of a trained model to read the stroke plan: "
                           "add --decoder-only and name the model with --init")
    if not args.init:
        return None
    try:
        init = load_checkpoint(args.init)
    except CheckpointError as error:
        raise CommandError(str(error)) from None
    if args.denoised is not None and (init.stage != "full" or init.config.family != "dim-gestor"):
        raise CommandError(f"--init {args.init} is not a full dim-gestor checkpoint: --denoised reads the latents of "
                           "a diffusion model (gestura train --family dim-gestor ...)")
    return init


def _save_with_decoders(init, model, parts, path: Path, step: int, args) -> Path:
    """``init`` (a full checkpoint) with the decoders of ``parts`` taken from ``model``."""
    from ..inference.checkpoint import save_checkpoint

    tensors = dict(init.tensors)
    for name, value in model.numpy_state().items():
        part, module = _vq_part_module(name)
        if (part in parts and module in DECODER_MODULES) or (module == "plan_in" and name not in tensors):
            tensors[name] = value  # (an untrained part's new plan_in is zero: it adds nothing)
    reserved = ("format", "format_version", "config", "styles", "stage")
    metadata = {k: v for k, v in init.metadata.items() if k not in reserved}
    record = {"parts": list(parts), "steps": step, "from": str(Path(args.init).name),
              "data": str(Path(args.data).resolve()), "w_jerk": args.w_jerk, "plan_decoders": args.plan_decoders,
              "decoder_lookahead": args.decoder_lookahead, "code_noise": args.code_noise}
    if args.denoised is not None:
        record["denoised"] = args.denoised
    if "decoders_fine_tuned" in init.metadata:  # decoders tuned before: keep how
        record["after"] = json.loads(init.metadata["decoders_fine_tuned"])
    metadata["decoders_fine_tuned"] = json.dumps(record)
    config = init.config.with_(plan_decoders=model.config.plan_decoders, decoder_lookahead=model.config.decoder_lookahead)
    return save_checkpoint(path, tensors, config,
                           stats=init.stats, styles=init.styles, stage="full", extra_metadata=metadata)
