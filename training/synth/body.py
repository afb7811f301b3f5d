"""Posture, breathing, weight shifts and planted feet: pelvis, legs and spine of the synthetic speaker.

Weight shifts move the pelvis sideways (with the hip on the unloaded side dropping a little); the
legs follow by exact two-bone IK to ankles that never move, and each ankle keeps one fixed world
orientation, so the feet stay planted: no foot sliding by construction. The pelvis is lowered just
enough that no leg ever has to stretch past 98.5 % of its length (a soft-kneed stance).
"""
from __future__ import annotations

import numpy as np

from ...rigs.skeleton import JOINT_INDEX
from .curves import key_curve, smooth_noise
from .ik import axis_rotation, solve_two_bone
from .styles import Style

J = JOINT_INDEX
X, Y, Z = np.eye(3)


def rot_x(a):
    return axis_rotation(X, a)


def rot_y(a):
    return axis_rotation(Y, a)


def rot_z(a):
    return axis_rotation(Z, a)


def weight_shift_curve(t: np.ndarray, style: Style, rng: np.random.Generator,
                       rests: list[tuple[float, float]] = ()) -> np.ndarray:
    """(N,) sideways pelvis offset (m): holds on one foot, then shifts over ~1.2 s to the other.
    A shift that would fall into a pause of ``rests`` ((start, end) s) waits for the pause's end."""
    duration = t[-1] if len(t) else 0.0
    times, values = [0.0], [rng.choice([-1.0, 1.0]) * style.weight_shift * rng.uniform(0.3, 1.0)]
    now = rng.uniform(0.3, 1.0) * style.weight_shift_every
    while now < duration:
        shift_time = 1.2 * rng.uniform(0.8, 1.3)
        for a, b in rests:
            if now < b and now + shift_time > a + 0.3:
                now = max(now, b)
        if now >= duration:
            break
        times += [now, now + shift_time]
        side = -np.sign(values[-1]) if rng.random() < 0.8 else np.sign(values[-1])
        values += [values[-1], side * style.weight_shift * rng.uniform(0.5, 1.0)]
        now += shift_time + rng.exponential(style.weight_shift_every) + 1.0
    return key_curve(np.array(times), np.array(values)[:, None], np.zeros(len(times), bool), t)[:, 0]


def lower_body(t: np.ndarray, style: Style, rng: np.random.Generator, rest: np.ndarray, local: np.ndarray,
               rests: list[tuple[float, float]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Fill pelvis, hip, knee, ankle and foot rotations into ``local`` (N, 55, 3, 3). Weight shifts
    wait for the end of the pauses ``rests`` ((start, end) s).

    Returns the root translation (N, 3) and the pelvis' sideways roll (N,) rad.
    """
    n = len(t)
    shift = weight_shift_curve(t, style, rng, rests)
    sway = smooth_noise(rng, t, 2.5, 2, amplitude=np.array([0.003, 0.004]))
    yaw = smooth_noise(rng, t, 3.0, 1, amplitude=0.025)[:, 0]
    # The hip of the unloaded leg drops: weight on the left foot (pelvis toward +x) tilts it so
    # that the right (-x) side goes down, a positive turn about z.
    roll = 0.7 * shift + smooth_noise(rng, t, 3.0, 1, amplitude=0.004)[:, 0]
    pelvis = rot_y(yaw) @ rot_z(roll)

    offsets = np.stack([shift + sway[:, 0], np.zeros(n), sway[:, 1]], axis=1)
    ankles, toe_out = {}, {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        ankles[side] = rest[J[f"{side}_ankle"]] + np.array([sign * style.stance, 0.0, 0.0])
        toe_out[side] = rot_y(np.array(sign * 0.12))

    # Lower the pelvis until every leg can reach its ankle at every frame.
    drop = style.pelvis_drop
    for side in ("left", "right"):
        hip = rest[J[f"{side}_hip"]] - rest[0]
        knee, ankle = J[f"{side}_knee"], J[f"{side}_ankle"]
        reach = 0.985 * (np.linalg.norm(rest[knee] - rest[J[f"{side}_hip"]]) + np.linalg.norm(rest[ankle] - rest[knee]))
        hips = rest[0] + offsets + np.einsum("nij,j->ni", pelvis, hip)
        horizontal = np.linalg.norm((hips - ankles[side])[:, [0, 2]], axis=1)
        need = hips[:, 1] - ankles[side][1] - np.sqrt(np.maximum(reach**2 - horizontal**2, 0.0))
        drop = max(drop, float(need.max()))
    trans = offsets - np.array([0.0, drop, 0.0])

    local[:, 0] = pelvis
    forward = np.einsum("nij,j->ni", pelvis, Z)
    for side in ("left", "right"):
        hip, knee, ankle, foot = (J[f"{side}_{name}"] for name in ("hip", "knee", "ankle", "foot"))
        hip_pos = rest[0] + trans + np.einsum("nij,j->ni", pelvis, rest[hip] - rest[0])
        target = np.broadcast_to(ankles[side], hip_pos.shape)
        hip_local, knee_local = solve_two_bone(
            hip_pos, target, pelvis, rest[knee] - rest[hip], rest[ankle] - rest[knee],
            hinge_axis=X, pole=forward, bend_range=(0.0, 2.2),
        )
        local[:, hip], local[:, knee] = hip_local, knee_local
        knee_global = pelvis @ hip_local @ knee_local
        local[:, ankle] = np.swapaxes(knee_global, -1, -2) @ toe_out[side]
        local[:, foot] = np.eye(3)
    return trans, roll


def breathing(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N,) breathing phase signal in [-1, 1] with a slowly varying 3.5-5 s period."""
    rate = 1 / rng.uniform(3.5, 5.0) + smooth_noise(rng, t, 6.0, 1, amplitude=0.02)[:, 0]
    phase = 2 * np.pi * np.cumsum(rate) * (t[1] - t[0] if len(t) > 1 else 0.0) + rng.uniform(0, 2 * np.pi)
    return np.sin(phase)


def spine(t: np.ndarray, style: Style, rng: np.random.Generator, local: np.ndarray, pelvis_roll: np.ndarray,
          breath: np.ndarray, arm_forward: np.ndarray, arm_twist: np.ndarray, emphasis: np.ndarray) -> np.ndarray:
    """Fill spine1..3 rotations. Returns the total forward lean (N,) so the neck can compensate.

    arm_forward: how far the hands are in front of rest (m, mean of both arms); arm_twist: right
    hand forward minus left hand forward (m) - the torso leans and turns a little into gestures.
    emphasis: (N,) bumps peaking at stroke apexes - the torso dips forward with each stroke.
    """
    drift = smooth_noise(rng, t, 1.6, 3, amplitude=np.array([0.015, 0.02, 0.012]) * style.head_motion)
    lean = style.lean + 0.12 * arm_forward - 0.012 * breath + 0.035 * emphasis + drift[:, 0]  # inhaling straightens
    side = style.side_lean - 1.1 * pelvis_roll + drift[:, 2]
    twist = 0.25 * arm_twist + drift[:, 1]
    for joint, share in (("spine1", 0.3), ("spine2", 0.3), ("spine3", 0.4)):
        local[:, J[joint]] = rot_y(share * twist) @ rot_x(share * lean) @ rot_z(share * side)
    return lean


def neck_and_head(t: np.ndarray, style: Style, rng: np.random.Generator, local: np.ndarray,
                  lean: np.ndarray, nods: np.ndarray) -> None:
    """Neck and head: keep the gaze level against the torso's lean, tilt, wander, nod (x turn down)."""
    wander = smooth_noise(rng, t, 1.8, 3, amplitude=np.array([0.04, 0.09, 0.03]) * style.head_motion)
    pitch = -0.75 * lean + wander[:, 0] + nods
    yaw = wander[:, 1]
    tilt = style.head_tilt + wander[:, 2]
    local[:, J["neck"]] = rot_y(0.4 * yaw) @ rot_x(0.4 * pitch) @ rot_z(0.4 * tilt)
    local[:, J["head"]] = rot_y(0.6 * yaw) @ rot_x(0.6 * pitch) @ rot_z(0.6 * tilt)
