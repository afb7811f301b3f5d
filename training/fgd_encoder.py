"""The motion auto-encoder whose features FGD compares (``gestura train-fgd``).

Published FGD numbers use EMAGE's own encoder; this one is trained by the project on whatever data
it is given, so its FGD is comparable only with other FGD values from the same encoder file.

Input per frame: rot6d of all 55 joints (330 numbers; no translation, no expressions: FGD scores
the gesture, not where the speaker stands), normalised by the training data's statistics. A
convolutional encoder halves time twice; each latent frame (one per 4 motion frames, covering
about half a second of motion through its receptive field) is one feature vector, as EMAGE
treats its latent frames. The decoder mirrors it and is used for training only.

File: safetensors, weights plus ``stats.mean``/``stats.std``, metadata ``format`` =
"gestura-fgd", ``format_version``, ``config`` (JSON). Nothing pickled.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CommandError, GesturaError
from ..rigs.motion import Motion
from ..rigs.rotations import axis_angle_to_matrix, matrix_to_rot6d
from .common import data_notes, load_data, log
from .dataset import take_window, window_index
from .ema import checkpoint_metadata
from .loop import LoopSpec, run_distributed, run_loop, seed_everything

FORMAT = "gestura-fgd"
FORMAT_VERSION = 1
FILE_NAME = "fgd_encoder.safetensors"
INPUT_DIM = 55 * 6
NOTE = "project encoder, not comparable with published FGD"


class FGDError(GesturaError, ValueError):
    pass


def motion_features(motion: Motion) -> np.ndarray:
    """(N, 330) rot6d of every joint."""
    return matrix_to_rot6d(axis_angle_to_matrix(motion.poses.astype(np.float64))).reshape(motion.num_frames, -1).astype(np.float32)


class MotionAutoEncoder(nn.Module):
    def __init__(self, hidden: int = 256, latent: int = 64):
        super().__init__()
        self.config = {"hidden": hidden, "latent": latent}
        act = nn.LeakyReLU(0.2)
        self.encoder = nn.Sequential(
            nn.Conv1d(INPUT_DIM, hidden, 3, padding=1), act,
            nn.Conv1d(hidden, hidden, 4, stride=2, padding=1), act,
            nn.Conv1d(hidden, hidden, 4, stride=2, padding=1), act,
            nn.Conv1d(hidden, latent, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.Conv1d(latent, hidden, 3, padding=1), act,
            nn.ConvTranspose1d(hidden, hidden, 4, stride=2, padding=1), act,
            nn.ConvTranspose1d(hidden, hidden, 4, stride=2, padding=1), act,
            nn.Conv1d(hidden, INPUT_DIM, 3, padding=1),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 330) normalised -> (B, T // 4, latent); T is cut to a multiple of 4."""
        t = x.shape[1] - x.shape[1] % 4
        return self.encoder(x[:, :t].transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        t = x.shape[1] - x.shape[1] % 4
        x = x[:, :t]
        recon = self.decoder(self.encode(x).transpose(1, 2)).transpose(1, 2)
        rec = F.l1_loss(recon, x)
        vel = F.l1_loss(recon[:, 1:] - recon[:, :-1], x[:, 1:] - x[:, :-1])
        return rec + vel, {"rec": rec.detach(), "vel": vel.detach()}


def save_encoder(path: Path, model: MotionAutoEncoder, mean: np.ndarray, std: np.ndarray, extra: dict | None = None) -> Path:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors["stats.mean"] = torch.as_tensor(mean, dtype=torch.float32)
    tensors["stats.std"] = torch.as_tensor(std, dtype=torch.float32)
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "config": json.dumps(model.config), "note": NOTE}
    meta.update({k: str(v) for k, v in (extra or {}).items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_encoder(path) -> tuple[MotionAutoEncoder, np.ndarray, np.ndarray]:
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FGDError(f"FGD encoder {path} does not exist: train one with gestura train-fgd --data DIR --out DIR")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise FGDError(f"FGD encoder {path} cannot be read: {error}") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != str(FORMAT_VERSION):
        raise FGDError(f"{path} is not a Gestura FGD encoder (version {FORMAT_VERSION}): train one with gestura train-fgd")
    model = MotionAutoEncoder(**json.loads(meta["config"]))
    mean, std = tensors.pop("stats.mean").numpy(), tensors.pop("stats.std").numpy()
    model.load_state_dict(tensors)
    return model.eval(), mean, std


@torch.no_grad()
def embed(model: MotionAutoEncoder, mean, std, motions: list[Motion]) -> np.ndarray:
    """(num latent frames over all motions, latent) feature vectors for FGD."""
    feats = []
    for motion in motions:
        x = (motion_features(motion) - mean) / std
        if len(x) < 4:
            continue
        feats.append(model.encode(torch.from_numpy(x).unsqueeze(0))[0].numpy())
    if not feats:
        raise FGDError("no motion of at least 4 frames to embed")
    return np.concatenate(feats, axis=0).astype(np.float64)


def main(args) -> int:
    return run_distributed(args, _train)


def _train(args, dist) -> int:
    seed_everything(args.seed)
    data = load_data(args, dist, ("train",))
    log(dist, f"train-fgd: {data.describe()}")
    if not data.clips:

        raise CommandError("no usable training clips: check --data, --speakers and the warnings above")
    feats = [motion_features(c.motion) for c in data.clips]
    allf = np.concatenate(feats).astype(np.float64)
    mean = allf.mean(0).astype(np.float32)
    std = np.maximum(allf.std(0), 1e-2).astype(np.float32)
    normalised = [((f - mean) / std).astype(np.float32) for f in feats]
    length = args.window - args.window % 4
    index = window_index(data.clips, length, args.stride or max(length // 2, 1))
    model = MotionAutoEncoder(args.hidden, args.latent)
    device = dist.device

    def make_batch(items, epoch):
        rows = index[items]
        return torch.from_numpy(np.stack([take_window(normalised[c], s, length) for c, s in rows])).to(device)

    out = Path(args.out)
    spec = LoopSpec(
        name="train-fgd", model=model, num_items=len(index), make_batch=make_batch,
        loss=lambda m, batch, gen, step, total: m(batch),
        export=lambda m, step: save_encoder(out / FILE_NAME, model, mean, std,
                                            {"trained_steps": step, "train_data": str(Path(args.data).resolve()),
                                             **checkpoint_metadata(args.ema)}),
        notes=data_notes(args, data),
        config_json=json.dumps([model.config, length]),
    )
    summary = run_loop(spec, args, dist)
    if dist.main:
        print(json.dumps({k: summary[k] for k in ("steps", "first", "last", "checkpoint")}))
    return 0

