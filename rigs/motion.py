"""The one structure motion travels in between the model, files and Blender.

Same content as a BEAT2 npz: SMPL-X axis-angle poses (N, 55, 3) in radians, local to each
joint's parent, root translation (N, 3) in metres in the Y-up SMPL-X frame, 100 FLAME
expression coefficients (N, 100), and the frame rate.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import GesturaError
from .skeleton import FPS, NUM_EXPRESSIONS, NUM_JOINTS


class MotionError(GesturaError, ValueError):
    """Motion data that cannot be used; the message names the problem and the fix."""


@dataclass
class Motion:
    poses: np.ndarray  # (N, 55, 3) float32 axis-angle
    trans: np.ndarray  # (N, 3) float32 metres, SMPL-X frame (Y up)
    expressions: np.ndarray  # (N, 100) float32
    fps: float = FPS
    betas: np.ndarray = field(default_factory=lambda: np.zeros(300, np.float32))

    def __post_init__(self) -> None:
        self.poses = np.asarray(self.poses, np.float32)
        self.trans = np.asarray(self.trans, np.float32)
        self.expressions = np.asarray(self.expressions, np.float32)
        self.betas = np.asarray(self.betas, np.float32)
        n = self.poses.shape[0] if self.poses.ndim else -1
        expected = {
            "poses": (self.poses, (n, NUM_JOINTS, 3)),
            "trans": (self.trans, (n, 3)),
            "expressions": (self.expressions, (n, NUM_EXPRESSIONS)),
        }
        for name, (array, shape) in expected.items():
            if array.shape != shape:
                raise MotionError(f"motion '{name}' has shape {array.shape}, expected {shape} (N frames)")
            if not np.isfinite(array).all():
                raise MotionError(f"motion '{name}' contains NaN or infinite values")
        if not (self.fps > 0):
            raise MotionError(f"motion fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.poses.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @classmethod
    def join(cls, motions) -> "Motion":
        """The frames of ``motions`` (a non-empty sequence at one fps) one after another; the betas
        are the first's. MotionError when they are empty or their fps differ."""
        motions = list(motions)
        if not motions:
            raise MotionError("there is no motion to join")
        if len({m.fps for m in motions}) > 1:
            raise MotionError(f"motions at different frame rates cannot be joined: {sorted({m.fps for m in motions})}")
        return cls(np.concatenate([m.poses for m in motions]), np.concatenate([m.trans for m in motions]),
                   np.concatenate([m.expressions for m in motions]), motions[0].fps, motions[0].betas)

    @classmethod
    def rest(cls, num_frames: int, fps: float = FPS) -> "Motion":
        return cls(
            poses=np.zeros((num_frames, NUM_JOINTS, 3), np.float32),
            trans=np.zeros((num_frames, 3), np.float32),
            expressions=np.zeros((num_frames, NUM_EXPRESSIONS), np.float32),
            fps=fps,
        )
