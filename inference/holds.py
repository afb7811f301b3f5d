"""Arms held up and still, as generation watches for them to let them go.

A span carries the previous span's last codes as known (``config.generation_prefix``), which joins
the spans smoothly but also lets a pose carry itself on: in speech with few pauses the body holds
one arm raised and still for tens of seconds, which neither the synthetic corpus nor people do
(``bench/bench_continuous_speech.py``; ``weights/MODEL_CARD.md``, "Letting a held arm go"). After
each span the pipeline gives its motion to a ``HoldWatch``; when the last ``HOLD_S`` seconds
hold an arm up, the next span carries no upper-body codes and takes its arms from the speech.

"Held" is issue 15's frozen arm (``training.metrics.frozen_arm_frames``) over a trailing window:
on every frame of it the wrist is at least ``RAISED_M`` above the pelvis (Y, SMPL-X's up axis),
and the elbow stays inside ``EXTENT_M`` (the largest side of the box around its positions).
Positions come from the built-in skeleton's forward kinematics (``rigs.kinematics``), the
skeleton the metrics use, and are compared in whole millimetres, so that float noise (NumPy
against PyTorch decoders) can change the decision only for a value within it of a millimetre's edge.
"""
from __future__ import annotations

import numpy as np

from ..rigs.kinematics import forward_kinematics
from ..rigs.motion import Motion
from ..rigs.rest_skeleton import default_rest_joints
from ..rigs.skeleton import FPS, JOINT_INDEX

RAISED_M = 0.15  # wrist over pelvis, metres: issue 15's frozen-arm height
EXTENT_M = 0.08  # elbow's largest extent, metres: issue 15's frozen-arm stillness
HOLD_S = 2.0  # seconds an arm must be held before the next span lets it go
# The parts whose carried codes the next span drops: the hands' codes carry a held arm too (with
# the upper body's alone dropped, the next spans took the same pose up again).
ARM_PARTS = ("upper", "hands")
_ARMS = tuple((JOINT_INDEX[f"{side}_wrist"], JOINT_INDEX[f"{side}_elbow"]) for side in ("left", "right"))
_PELVIS = JOINT_INDEX["pelvis"]


class HoldWatch:
    """Whether the motion generated so far ends with an arm held up and still for ``HOLD_S`` s.

    ``push(motion)`` after each span (in clip order) returns True when the last ``hold_frames``
    frames generated hold either arm up: wrist at least ``raised_m`` over the pelvis on each of
    them, elbow inside ``extent_m``. Fewer frames than that generated so far never hold."""

    def __init__(self, hold_s: float = HOLD_S, raised_m: float = RAISED_M, extent_m: float = EXTENT_M,
                 fps: float = FPS) -> None:
        self.hold_frames = int(round(hold_s * fps))
        self._raised_mm, self._extent_mm = round(raised_m * 1000), round(extent_m * 1000)
        self._rest = default_rest_joints()
        self._recent = np.zeros((0, 1 + 2 * len(_ARMS), 3))  # pelvis, then each arm's wrist and elbow

    def push(self, motion: Motion) -> bool:
        positions, _ = forward_kinematics(motion.poses, motion.trans, self._rest)
        joints = [_PELVIS] + [j for arm in _ARMS for j in arm]
        self._recent = np.concatenate([self._recent, positions[:, joints]])[-self.hold_frames:]
        if len(self._recent) < self.hold_frames:
            return False
        mm = np.round(self._recent * 1000.0)
        for k in range(len(_ARMS)):
            wrist, elbow = mm[:, 1 + 2 * k], mm[:, 2 + 2 * k]
            raised = np.min(wrist[:, 1] - mm[:, 0, 1]) >= self._raised_mm
            still = np.max(elbow.max(0) - elbow.min(0)) <= self._extent_mm
            if raised and still:
                return True
        return False
