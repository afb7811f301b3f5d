"""One generation frame of all parts' local scans at once (the torch engine's fast path).

``Generator.local_step`` runs each part's stack with its own small matrix-vector products; at one
frame per call that is dominated by per-operation overhead. Here the parts' weights are stacked
once (layer i of every part that has an i-th layer) and each step is a handful of batched
products. Same arithmetic as ``Generator.local_step`` up to float rounding (a test checks it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...rigs.skeleton import PARTS


def _bmv(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(G, out, in) x (G, in) -> (G, out)."""
    return torch.bmm(weight, x.unsqueeze(-1)).squeeze(-1)


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


class FusedLocalStep:
    def __init__(self, generator, parts):
        self.parts = tuple(p for p in PARTS if p in parts)
        g = generator
        self.eps = g.global_norm.eps
        stack = lambda tensors: torch.stack([t.detach() for t in tensors])  # noqa: E731
        self.prev_w = stack([g.prev_in[p].weight for p in self.parts])
        self.prev_b = stack([g.prev_in[p].bias for p in self.parts])
        self.norm_w = stack([g.out_norm[p].weight for p in self.parts])
        self.logits_w = stack([g.logits[p].weight for p in self.parts])
        self.logits_b = stack([g.logits[p].bias for p in self.parts])
        self.layers = []
        depth = max((len(g.local[p]) for p in self.parts), default=0)
        for i in range(depth):
            index = [k for k, p in enumerate(self.parts) if len(g.local[p]) > i]
            blocks = [g.local[self.parts[k]][i] for k in index]
            m = [b.mixer for b in blocks]
            layer = {
                "index": torch.tensor(index, device=self.prev_w.device),
                "all": len(index) == len(self.parts),
                "norm": stack([b.norm.weight for b in blocks]),
                "in_proj": stack([x.in_proj.weight for x in m]),
                "conv_w": stack([x.conv1d.weight[:, 0] for x in m]),
                "conv_b": stack([x.conv1d.bias for x in m]),
                "x_proj": stack([x.x_proj.weight for x in m]),
                "dt_w": stack([x.dt_proj.weight for x in m]),
                "dt_b": stack([x.dt_proj.bias for x in m]),
                "A": -torch.exp(stack([x.A_log.float() for x in m])),
                "D": stack([x.D for x in m]),
                "out_proj": stack([x.out_proj.weight for x in m]),
                "dt_rank": m[0].dt_rank, "d_state": m[0].d_state,
                "mlp": blocks[0].mlp is not None,
            }
            if layer["mlp"]:
                layer["norm2"] = stack([b.norm2.weight for b in blocks])
                layer["fc1"] = stack([b.mlp.fc1.weight for b in blocks])
                layer["fc2"] = stack([b.mlp.fc2.weight for b in blocks])
            self.layers.append(layer)

    def initial_state(self, device):
        state = []
        for layer in self.layers:
            g, di, k = layer["conv_w"].shape
            state.append((torch.zeros(g, di, k - 1, device=device), torch.zeros(g, di, layer["d_state"], device=device)))
        return state

    def _block(self, layer, x, state):
        conv_state, h = state
        u, z = _bmv(layer["in_proj"], _rms(x, layer["norm"], self.eps)).chunk(2, dim=-1)
        full = torch.cat([conv_state, u.unsqueeze(-1)], dim=-1)
        u = F.silu((full * layer["conv_w"]).sum(-1) + layer["conv_b"])
        dt_low, B, C = _bmv(layer["x_proj"], u).split([layer["dt_rank"], layer["d_state"], layer["d_state"]], dim=-1)
        dt = F.softplus(_bmv(layer["dt_w"], dt_low) + layer["dt_b"])
        h = torch.exp(dt.unsqueeze(-1) * layer["A"]) * h + (dt * u).unsqueeze(-1) * B.unsqueeze(1)
        y = (h * C.unsqueeze(1)).sum(-1) + layer["D"] * u
        x = x + _bmv(layer["out_proj"], y * F.silu(z))
        if layer["mlp"]:
            a, b = _bmv(layer["fc1"], _rms(x, layer["norm2"], self.eps)).chunk(2, dim=-1)
            x = x + _bmv(layer["fc2"], F.silu(a) * b)
        return x, (full[..., 1:], h)

    def step(self, context: torch.Tensor, prev_latents: torch.Tensor, state):
        """context (d,), prev_latents (4, D) -> logits (parts, K), new state."""
        flat = prev_latents.reshape(1, -1).expand(len(self.parts), -1)
        x = context + _bmv(self.prev_w, flat) + self.prev_b
        new_state = []
        for layer, s in zip(self.layers, state):
            if layer["all"]:
                x, s = self._block(layer, x, s)
            else:
                y, s = self._block(layer, x[layer["index"]], s)
                x = x.index_copy(0, layer["index"], y)
            new_state.append(s)
        logits = _bmv(self.logits_w, _rms(x, self.norm_w, self.eps)) + self.logits_b
        return logits, new_state
