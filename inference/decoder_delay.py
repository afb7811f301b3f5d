"""Lining up part decoders that look ahead (``config.decoder_lookahead``) in a stream.

A part decoder that looks ``l`` frames ahead is still causal in what it reads: given the
up-sampled frames [a, b) of its codes it returns the motion of frames [a - l, b - l), having
been trained to (``train_vq.Stage1``). So a stream drops each part's first ``l`` outputs (frames
before the clip), hands on only the frames that every part has reached, and at the end decodes
one more code per part (``DecoderDelay.tail_codes``) to reach the clip's last frame: a clip's last
l frames are decoded while the last code is read once more (with no stroke plan beyond the clip).
The delay a stream adds to its latency is the largest look-ahead, at most one code
(``frames_per_code``); a span shorter than that may hand on no frame at all.
"""
from __future__ import annotations

import numpy as np


class DecoderDelay:
    """Aligns the decoded features of the parts of one stream; ``lookahead``: {part: frames}."""

    def __init__(self, lookahead: dict):
        self._to_drop = {part: int(frames) for part, frames in lookahead.items()}
        self._held = {part: None for part in lookahead}
        self.frames = max(self._to_drop.values(), default=0)

    def push(self, decoded: dict) -> dict:
        """Every part's decoded features of the same input frames, {part: (n, dim)} -> {part: (m,
        dim)}: the next frames that every part has reached (m = n, less the delay on the first call)."""
        if set(decoded) != set(self._held):
            raise ValueError(f"decoded parts {sorted(decoded)} are not the stream's {sorted(self._held)}")
        for part, features in decoded.items():
            drop = min(self._to_drop[part], len(features))
            self._to_drop[part] -= drop
            held = self._held[part]
            features = features[drop:]
            self._held[part] = features if held is None else np.concatenate([held, features])
        n = min(len(held) for held in self._held.values())
        out = {part: held[:n] for part, held in self._held.items()}
        self._held = {part: held[n:] for part, held in self._held.items()}
        return out

    @staticmethod
    def tail_codes(last: dict) -> dict:
        """What to decode after a clip's last code so that the decoders reach its last frame: the
        last code (or latent) of each part once more, {part: (n, ...)} -> {part: (1, ...)}; the
        frames it adds beyond the clip are cut."""
        return {part: np.asarray(values)[-1:] for part, values in last.items()}
