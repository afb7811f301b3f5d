"""Frozen arms (an arm raised and held still), as generation watches for them to let them go.

A span carries the previous span's last codes as known (``config.generation_prefix``), which joins
the spans smoothly but also lets a pose carry itself on: in speech with few pauses the body held
one arm raised and still for tens of seconds, which neither the synthetic corpus nor people do
(``bench/bench_continuous_speech.py``; ``weights/MODEL_CARD.md``, "Letting a held arm go"). After
each span the pipeline gives its motion to a ``FrozenArmWatch``; when the last ``LET_GO_S`` seconds
freeze an arm, the next span carries none of the previous span's ``ARM_PARTS`` codes (upper body
and hands; for a DiM-Gestor model, their latents) and takes them from the speech.

Frozen is issue 15's measure (``training.metrics.frozen_arm_frames``, which takes its thresholds
from here) over a trailing window instead of a centred one: on every frame of the window the wrist
is at least ``RAISED_M`` above the pelvis (Y, SMPL-X's up axis), and the elbow stays inside
``EXTENT_M`` (the largest side of the box around its positions in the window). Positions come from
the built-in skeleton's forward kinematics (``rigs.kinematics``), as the metrics take them.
"""
from __future__ import annotations

import numpy as np

from ..rigs.kinematics import forward_kinematics
from ..rigs.motion import Motion
from ..rigs.rest_skeleton import default_rest_joints
from ..rigs.skeleton import FPS, JOINT_INDEX

RAISED_M = 0.15  # metres a frozen arm's wrist stays above the pelvis, at least (issue 15)
EXTENT_M = 0.08  # metres a frozen arm's elbow moves, less than (issue 15)
LET_GO_S = 2.0  # seconds an arm stays frozen before the next span lets it go
# The parts whose carried codes the next span drops: the hands' codes carry a frozen arm too (with
# the upper body's alone dropped, the next spans took the same pose up again).
ARM_PARTS = ("upper", "hands")
# Rows the watch keeps per frame: the pelvis, then each arm's wrist and elbow.
_JOINTS = (JOINT_INDEX["pelvis"], JOINT_INDEX["left_wrist"], JOINT_INDEX["left_elbow"],
           JOINT_INDEX["right_wrist"], JOINT_INDEX["right_elbow"])


class FrozenArmWatch:
    """Whether the motion generated so far ends with a frozen arm.

    ``push(motion)`` after each span (frames in clip order, at ``fps``) returns True when the last
    ``window_frames`` frames pushed freeze either arm: its wrist at least ``raised_m`` metres above
    the pelvis on each of them and its elbow's extent over them under ``extent_m`` metres. Fewer
    frames than that pushed so far never freeze. Raises ValueError for a window under one frame."""

    def __init__(self, seconds: float = LET_GO_S, raised_m: float = RAISED_M, extent_m: float = EXTENT_M,
                 fps: float = FPS) -> None:
        self.window_frames = int(round(seconds * fps))
        if self.window_frames < 1:
            raise ValueError(f"a frozen-arm window must hold at least one frame, got {seconds} s at {fps} fps")
        self.raised_m, self.extent_m = float(raised_m), float(extent_m)
        self._rest = default_rest_joints()
        self._recent = np.zeros((0, len(_JOINTS), 3))

    def push(self, motion: Motion) -> bool:
        positions, _ = forward_kinematics(motion.poses, motion.trans, self._rest)
        recent = np.concatenate([self._recent, np.asarray(positions, np.float64)[:, _JOINTS]])
        self._recent = recent[max(len(recent) - self.window_frames, 0):]
        if len(self._recent) < self.window_frames:
            return False
        pelvis = self._recent[:, 0, 1]
        for wrist, elbow in ((1, 2), (3, 4)):
            raised = np.min(self._recent[:, wrist, 1] - pelvis) >= self.raised_m
            e = self._recent[:, elbow]
            if raised and np.max(e.max(0) - e.min(0)) < self.extent_m:
                return True
        return False
