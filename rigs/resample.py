"""Change a Motion's frame rate: slerp for joint rotations, linear for translation and expressions."""
from __future__ import annotations

import numpy as np

from .motion import Motion, MotionError
from .rotations import axis_angle_to_quaternion, quaternion_to_axis_angle, slerp


def resample(motion: Motion, fps: float) -> Motion:
    """``motion`` at ``fps`` frames per second, covering the same time span.

    Frame k of the result shows time k / fps; the clip keeps its first and (to the nearest new
    frame) its last pose. Same rate gives an unchanged copy.
    """
    fps = float(fps)
    if not (fps > 0) or not np.isfinite(fps):
        raise MotionError(f"target fps must be a positive number, got {fps}")
    if fps == motion.fps or motion.num_frames <= 1:
        return Motion(motion.poses.copy(), motion.trans.copy(), motion.expressions.copy(), fps, motion.betas.copy())
    count = int(round((motion.num_frames - 1) * fps / motion.fps)) + 1
    # Source position of each new frame, clamped so rounding never reads past the last frame.
    source = np.minimum(np.arange(count) * (motion.fps / fps), motion.num_frames - 1)
    lower = np.floor(source).astype(np.int64)
    upper = np.minimum(lower + 1, motion.num_frames - 1)
    t = source - lower

    quats = axis_angle_to_quaternion(motion.poses.astype(np.float64))
    poses = quaternion_to_axis_angle(slerp(quats[lower], quats[upper], t[:, None]))

    def lerp(values: np.ndarray) -> np.ndarray:
        values = values.astype(np.float64)
        return values[lower] * (1.0 - t[:, None]) + values[upper] * t[:, None]

    return Motion(poses, lerp(motion.trans), lerp(motion.expressions), fps, motion.betas.copy())
