"""Retargeting math: move a posed source skeleton's motion onto a target skeleton by a bone map.

No bpy. Both skeletons are described the way Blender stores armatures (``Skeleton``): each bone's
rest matrix in armature space (``Bone.matrix_local``: columns are the bone's local axes, Y runs
along the bone, translation is the head), its parent, its length, and the armature object's world
matrix. Posing follows Blender's rule for bones that inherit rotation and use local location:

    pose[b] = pose[parent] @ rest[parent]^-1 @ rest[b] @ basis[b]

where ``basis`` is what keyframes hold (location, rotation). ``pose_matrices`` evaluates that.

``retarget`` transfers, for every mapped pair (source bone s -> target bone t), the world-space
rotation s makes away from its rest pose onto t:

    W_t(frame) = D_s(frame) @ A_t @ W_t(rest),   D_s = W_s(frame) @ W_s(rest)^-1

``A_t`` first turns the target's rest bone onto the source's rest direction (the target stood in
an A-pose, the source in a T-pose: A_t lifts the arm), so afterwards each mapped target bone points
where its source bone points, whatever the two rigs' rest poses, bone rolls, local axes or sizes.
The world rotations are then made local through the target's own parent chain; unmapped target
bones keep their current local pose (rest unless the caller passes another), so a twist or
helper bone between two mapped bones simply follows its parent.

A source bone s may drive a chain of target bones t_1..t_m, m > 1 (a rig with two spine bones where
SMPL-X has three, or two neck bones where it has one). Its run is s with the unmapped joints above it
(up to the nearest mapped ancestor), reaching to the joint it aims at. Run and chain are laid
along each other by length, and each target bone turns by the weighted mean of the world deltas
of the source segments beside it (``"spine3": "Ab, Chest"`` spreads spine1-spine3's rotations
over two bones; ``"neck": "Neck, Neck1"`` turns both with the one neck). One rest alignment
turns the whole chain (its first head to the next mapped head) onto the run, so the chain keeps
its own curvature. The root's translation is scaled
by the ratio of the two skeletons' leg lengths.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..errors import GesturaError
from .bonemaps import chain_bones
from .rotations import matrix_to_quaternion, nearest_rotation, quaternion_to_matrix, sign_continuous

# Where each SMPL-X joint's bone points: the joint whose head its direction is measured to. Joints
# with one child use that child; the branching ones are named here (the pelvis points up the
# spine, the chest up the neck, the wrist along the middle finger). Leaves (head, toes, finger
# tips, jaw, eyes) have no aim: they keep their rest offset to their parent.
SMPLX_AIM_OVERRIDES: dict[str, str] = {
    "pelvis": "spine1",
    "spine3": "neck",
    "head": "",
    "left_wrist": "left_middle1",
    "right_wrist": "right_middle1",
}
SMPLX_LEGS: tuple[tuple[str, ...], ...] = (
    ("left_hip", "left_knee", "left_ankle"),
    ("right_hip", "right_knee", "right_ankle"),
)
SMPLX_HIPS: tuple[str, str] = ("left_hip", "right_hip")

_EULER_AXES = {"X": 0, "Y": 1, "Z": 2}
EULER_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


class RetargetError(GesturaError, ValueError):
    """A skeleton or bone map that cannot be retargeted; the message names the problem and the fix."""


@dataclass(frozen=True)
class Skeleton:
    """An armature's rest pose, in Blender's bone conventions (see the module docstring)."""

    names: tuple[str, ...]
    parents: tuple[int, ...]  # index of each bone's parent, -1 for none
    rest: np.ndarray  # (J, 4, 4) armature-space rest matrices (Bone.matrix_local)
    lengths: np.ndarray  # (J,) bone lengths in armature units
    object_matrix: np.ndarray = field(default_factory=lambda: np.eye(4))  # the armature object's world matrix

    def __post_init__(self) -> None:
        rest = np.asarray(self.rest, np.float64)
        object_matrix = np.asarray(self.object_matrix, np.float64)
        lengths = np.asarray(self.lengths, np.float64)
        object.__setattr__(self, "rest", rest)
        object.__setattr__(self, "object_matrix", object_matrix)
        object.__setattr__(self, "lengths", lengths)
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))
        count = len(self.names)
        if len(set(self.names)) != count:
            raise RetargetError("skeleton bone names must be unique")
        if rest.shape != (count, 4, 4) or lengths.shape != (count,) or len(self.parents) != count:
            raise RetargetError(
                f"skeleton of {count} bones needs rest (J,4,4), lengths (J,) and parents (J,); "
                f"got {rest.shape}, {lengths.shape}, {len(self.parents)}"
            )
        if object_matrix.shape != (4, 4) or not np.isfinite(object_matrix).all() or not np.isfinite(rest).all():
            raise RetargetError("skeleton matrices must be finite 4x4 matrices")
        rotations = rest[:, :3, :3]
        if not np.allclose(rotations @ np.swapaxes(rotations, 1, 2), np.eye(3), atol=1e-4):
            raise RetargetError("skeleton rest matrices must be rigid (Blender's Bone.matrix_local is)")
        if abs(np.linalg.det(object_matrix[:3, :3])) < 1e-12:
            raise RetargetError("the armature object's world matrix is singular (zero scale?)")
        for i, p in enumerate(self.parents):
            if not -1 <= p < count or p == i:
                raise RetargetError(f"bone '{self.names[i]}' has an invalid parent index {p}")
        object.__setattr__(self, "_order", _topological_order(self.parents, self.names))

    @property
    def order(self) -> tuple[int, ...]:
        """Bone indices with every parent before its children."""
        return self._order  # type: ignore[attr-defined]

    def index(self, name: str) -> int:
        return self.names.index(name)

    @property
    def object_rotation(self) -> np.ndarray:
        """The rotation part of the object's world matrix (scale removed)."""
        return nearest_rotation(self.object_matrix[:3, :3])

    def world_rest_heads(self) -> np.ndarray:
        """(J, 3) bone heads in world space."""
        return self.rest[:, :3, 3] @ self.object_matrix[:3, :3].T + self.object_matrix[:3, 3]


def _topological_order(parents: Sequence[int], names: Sequence[str]) -> tuple[int, ...]:
    depth = [-1] * len(parents)
    for start in range(len(parents)):
        chain, b = [], start
        while b != -1 and depth[b] < 0:
            if b in chain:
                raise RetargetError(f"skeleton parent chain of '{names[start]}' loops back on itself")
            chain.append(b)
            b = parents[b]
        base = -1 if b == -1 else depth[b]
        for k, bone in enumerate(reversed(chain)):
            depth[bone] = base + 1 + k
    return tuple(sorted(range(len(parents)), key=lambda i: (depth[i], i)))


def _inverse_rigid(m: np.ndarray) -> np.ndarray:
    out = np.zeros_like(m)
    rt = np.swapaxes(m[..., :3, :3], -1, -2)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -(rt @ m[..., :3, 3, None])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def pose_matrices(skeleton: Skeleton, basis: np.ndarray) -> np.ndarray:
    """Armature-space pose matrices (like ``PoseBone.matrix``) from local ``basis`` (N, J, 4, 4)."""
    basis = np.asarray(basis, np.float64)
    if basis.shape[1:] != (len(skeleton.names), 4, 4):
        raise RetargetError(f"basis must have shape (N, {len(skeleton.names)}, 4, 4), got {basis.shape}")
    rest = skeleton.rest
    inv_rest = _inverse_rigid(rest)
    pose = np.empty_like(basis)
    for b in skeleton.order:
        p = skeleton.parents[b]
        offset = rest[b] if p < 0 else inv_rest[p] @ rest[b]
        pose[:, b] = (offset if p < 0 else pose[:, p] @ offset) @ basis[:, b]
    return pose


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation turning direction ``a`` onto direction ``b`` (3-vectors)."""
    a = np.asarray(a, np.float64) / np.linalg.norm(a)
    b = np.asarray(b, np.float64) / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1.0 + 1e-9:
        # Opposite directions: any half turn about an axis perpendicular to a.
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    k = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


def default_aim_children(source: Skeleton) -> dict[str, str]:
    """For each source bone, the bone whose head its direction points at ('' for none).

    SMPL-X joints use ``SMPLX_AIM_OVERRIDES`` at branches; elsewhere a bone with exactly one
    child aims at it.
    """
    aims: dict[str, str] = {}
    for i, name in enumerate(source.names):
        kids = [source.names[c] for c, p in enumerate(source.parents) if p == i]
        if name in SMPLX_AIM_OVERRIDES and (SMPLX_AIM_OVERRIDES[name] in kids or not SMPLX_AIM_OVERRIDES[name]):
            aims[name] = SMPLX_AIM_OVERRIDES[name]
        else:
            aims[name] = kids[0] if len(kids) == 1 else ""
    return aims


def leg_length(skeleton: Skeleton, chains: Sequence[Sequence[str]]) -> float | None:
    """Mean world-space length of the given bone chains (head to head), or None if none is complete."""
    heads = skeleton.world_rest_heads()
    totals = []
    for chain in chains:
        if all(name in skeleton.names for name in chain):
            points = heads[[skeleton.index(name) for name in chain]]
            totals.append(float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum()))
    return float(np.mean(totals)) if totals and np.mean(totals) > 0 else None


@dataclass
class RetargetResult:
    """Local (basis) rotations for the mapped target bones, and the root bone's location."""

    bones: tuple[str, ...]  # mapped target bones, parents before children
    rotations: np.ndarray  # (N, len(bones), 3, 3) basis rotations
    root: str | None  # target bone carrying the translation
    root_location: np.ndarray | None  # (N, 3) basis location of ``root``, in its rest frame
    scale: float  # target leg length / source leg length (root translation factor)
    facing: np.ndarray  # (3, 3) world rotation turning the source's facing onto the target's
    # What the keys aim at, in target armature space: each bone's pose rotation (N, K, 3, 3) and
    # the root's head (N, 3). Rigs whose parents are driven by constraints are corrected to these.
    wanted: np.ndarray | None = None
    root_head: np.ndarray | None = None

    def basis(self, target: Skeleton, current: np.ndarray | None = None) -> np.ndarray:
        """Full (N, J, 4, 4) basis of the target: these bones keyed, the others as ``current``."""
        count = self.rotations.shape[0]
        out = np.broadcast_to(_identity_basis(target) if current is None else current, (count, len(target.names), 4, 4)).copy()
        for k, name in enumerate(self.bones):
            b = target.index(name)
            out[:, b, :3, :3] = self.rotations[:, k]
        if self.root is not None and self.root_location is not None:
            out[:, target.index(self.root), :3, 3] = self.root_location
        return out


def _identity_basis(skeleton: Skeleton) -> np.ndarray:
    return np.broadcast_to(np.eye(4), (len(skeleton.names), 4, 4))


def retarget(
    source: Skeleton,
    source_pose: np.ndarray,
    target: Skeleton,
    bone_map: Mapping[str, str | Sequence[str]],
    *,
    target_basis: np.ndarray | None = None,
    root: str | None = "pelvis",
    root_target: str | None = None,
    root_motion: bool = True,
    aim_children: Mapping[str, str] | None = None,
    target_aims: Mapping[str, np.ndarray] | None = None,
    legs: Sequence[Sequence[str]] = SMPLX_LEGS,
    hips: tuple[str, str] | None = SMPLX_HIPS,
    up: Sequence[float] = (0.0, 0.0, 1.0),
) -> RetargetResult:
    """Retarget ``source_pose`` (N, Js, 4, 4 armature-space pose matrices) onto ``target``.

    ``bone_map`` maps source bone names to target bone names, or to chains of them (a sequence,
    or names separated by commas, parent first: see the module docstring); every name must exist (the caller
    drops what a rig lacks and reports it). ``target_basis`` (Jt, 4, 4) is the local pose the
    unmapped target bones keep (default: rest). ``root`` is the source bone whose translation
    moves the target; ``root_target`` the target bone that carries it (default: the bone ``root``
    maps to; control rigs move the whole body with another bone); ``legs`` are the source chains whose length,
    compared with the mapped target chains, scales that translation. ``target_aims`` gives, per
    target bone, the armature-space rest direction to line up with its source bone instead of
    the one to its mapped child's head (a control rig's deform bones show where a control points). ``hips`` (left, right) turn
    the source's facing onto the target's about the world ``up`` axis, so a target that faces
    another way performs the motion facing its own way.
    """
    source_pose = np.asarray(source_pose, np.float64)
    if source_pose.ndim != 4 or source_pose.shape[1:] != (len(source.names), 4, 4):
        raise RetargetError(f"source pose must have shape (N, {len(source.names)}, 4, 4), got {source_pose.shape}")
    chains = _validated_pairs(source, target, bone_map)
    # Each joint's head sits at the head of its chain's first bone.
    pairs = {s: bones[0] for s, bones in chains.items()}
    current = _identity_basis(target) if target_basis is None else np.asarray(target_basis, np.float64)
    if current.shape != (len(target.names), 4, 4):
        raise RetargetError(f"target basis must have shape ({len(target.names)}, 4, 4), got {current.shape}")
    aims = default_aim_children(source) if aim_children is None else dict(aim_children)
    count = source_pose.shape[0]

    o_s, o_t = source.object_rotation, target.object_rotation
    facing = _facing(source, target, pairs, hips, np.asarray(up, np.float64))
    # One rotation taking source armature directions into target armature space.
    s_to_t = o_t.T @ facing @ o_s

    # Source world deltas, expressed in target armature space: D = s_to_t P R^-1 s_to_t^T.
    src_rest_rot = source.rest[:, :3, :3]
    mapped_src = {s: source.index(s) for s in pairs}
    deltas = {
        s: s_to_t @ source_pose[:, i, :3, :3] @ src_rest_rot[i].T @ s_to_t.T for s, i in mapped_src.items()
    }

    alignment = _rest_alignment(source, target, chains, aims, s_to_t, target_aims or {})
    bone_deltas = _chain_deltas(
        source, target, chains, aims,
        lambda j: deltas[j] if j in deltas else s_to_t @ source_pose[:, source.index(j), :3, :3]
        @ src_rest_rot[source.index(j)].T @ s_to_t.T)

    # Walk the target parents-first: mapped bones get their wanted armature rotation, then local.
    tgt_rest_rot = target.rest[:, :3, :3]
    by_target = {t for bones in chains.values() for t in bones}
    posed = np.empty((count, len(target.names), 3, 3))
    local, wanted = {}, {}
    for b in target.order:
        name = target.names[b]
        p = target.parents[b]
        # Rotation this bone would have with an identity basis: parent pose carried to its rest offset.
        carried = (
            np.broadcast_to(tgt_rest_rot[b], (count, 3, 3))
            if p < 0
            else posed[:, p] @ tgt_rest_rot[p].T @ tgt_rest_rot[b]
        )
        if name in by_target:
            want = bone_deltas[name] @ alignment[name] @ tgt_rest_rot[b]
            wanted[name] = want
            basis_rot = np.swapaxes(carried, -1, -2) @ want
            local[name] = basis_rot
            posed[:, b] = carried @ basis_rot
        else:
            posed[:, b] = carried @ current[b, :3, :3]
    bones = tuple(target.names[b] for b in target.order if target.names[b] in by_target)
    rotations = np.stack([local[name] for name in bones], axis=1) if bones else np.zeros((count, 0, 3, 3))
    wanted_rotations = np.stack([wanted[name] for name in bones], axis=1) if bones else rotations

    scale = 1.0
    target_root = (root_target or pairs.get(root)) if root else None
    if target_root is not None and target_root not in target.names:
        raise RetargetError(f"the root bone '{target_root}' is not in the target")
    root_location = root_head = None
    src_legs = leg_length(source, legs)
    tgt_legs = leg_length(target, [[pairs[n] for n in chain] for chain in legs if all(n in pairs for n in chain)])
    if src_legs and tgt_legs:
        scale = tgt_legs / src_legs
    if target_root is not None and root_motion:
        r = source.index(root)
        # World displacement of the source root's head from its rest head.
        head_arm = source_pose[:, r, :3, 3] - source.rest[r, :3, 3]
        displacement = head_arm @ source.object_matrix[:3, :3].T
        # Into target armature units (object scale included), facing turned.
        shift = (displacement @ facing.T * scale) @ np.linalg.inv(target.object_matrix[:3, :3]).T
        t = target.index(target_root)
        p = target.parents[t]
        # The location channel moves the head along the frame its identity-basis pose would have.
        frame = (
            np.broadcast_to(tgt_rest_rot[t], (count, 3, 3))
            if p < 0
            else posed[:, p] @ tgt_rest_rot[p].T @ tgt_rest_rot[t]
        )
        root_location = (np.swapaxes(frame, -1, -2) @ shift[..., None])[..., 0]
        # Where the root's head should be: its head with a zero location, plus the shift.
        chain = [t]
        while target.parents[chain[-1]] >= 0:
            chain.append(target.parents[chain[-1]])
        pose = np.broadcast_to(np.eye(4), (count, 4, 4))
        for a in reversed(chain):
            parent = target.parents[a]
            offset = target.rest[a] if parent < 0 else _inverse_rigid(target.rest[parent]) @ target.rest[a]
            basis = np.broadcast_to(current[a], (count, 4, 4)).copy()
            if target.names[a] in local:
                basis[:, :3, :3] = local[target.names[a]]
            if a == t:
                basis[:, :3, 3] = 0.0
            pose = pose @ offset @ basis
        root_head = pose[:, :3, 3] + shift
    return RetargetResult(bones, rotations, target_root, root_location, float(scale), facing, wanted_rotations, root_head)


def _validated_pairs(source: Skeleton, target: Skeleton, bone_map) -> dict[str, tuple[str, ...]]:
    """``bone_map`` as source bone -> chain of target bones (parent first), checked."""
    chains = {s: chain_bones(t) if isinstance(t, str) else tuple(t) for s, t in bone_map.items()}
    missing_src = sorted(s for s in chains if s not in source.names)
    missing_tgt = sorted(t for bones in chains.values() for t in bones if t not in target.names)
    if missing_src:
        raise RetargetError(f"bone map names source bones the source lacks: {', '.join(missing_src)}")
    if missing_tgt:
        raise RetargetError(f"bone map names target bones the target lacks: {', '.join(missing_tgt)}")
    seen: dict[str, str] = {}
    for s, bones in chains.items():
        if not bones:
            raise RetargetError(f"bone map gives no target bone for '{s}'")
        for t in bones:
            if t in seen:
                raise RetargetError(f"target bone '{t}' is mapped from both '{seen[t]}' and '{s}'; map it once")
            seen[t] = s
        for upper, lower in zip(bones, bones[1:]):
            if not _is_ancestor(target, target.index(upper), target.index(lower)):
                raise RetargetError(f"the chain '{', '.join(bones)}' for '{s}' must list bones from parent to "
                                    f"child: '{lower}' is not below '{upper}'")
    return chains


def _is_ancestor(skeleton: Skeleton, ancestor: int, bone: int) -> bool:
    b = skeleton.parents[bone]
    while b >= 0:
        if b == ancestor:
            return True
        b = skeleton.parents[b]
    return False


def _chain_deltas(source: Skeleton, target: Skeleton, chains, aims, delta) -> dict[str, np.ndarray]:
    """Per mapped target bone, the world rotation delta (N, 3, 3) it makes (see the module
    docstring): a single bone turns exactly like its joint; along a chain of bones the run (the
    joint and the unmapped joints above it) and the chain are laid along each other by length, and each target bone takes the mean rotation of the source segments beside it,
    weighted by how much of it each covers. ``delta(joint)`` gives a source joint's delta."""
    src_heads, tgt_heads = source.rest[:, :3, 3], target.rest[:, :3, 3]
    out = {}
    for s, bones in chains.items():
        if len(bones) == 1:
            out[bones[0]] = delta(s)
            continue
        run = [s]
        while run[0] != _run_start(source, s, chains):
            run.insert(0, source.names[source.parents[source.index(run[0])]])
        end = _aimed(s, chains, aims)
        src_points = [src_heads[source.index(j)] for j in run]
        src_last = (np.linalg.norm(src_heads[source.index(_chain_start(source, end, chains))] - src_points[-1])
                    if end else source.lengths[source.index(s)])
        tgt_points = [tgt_heads[target.index(t)] for t in bones]
        tgt_last = (np.linalg.norm(tgt_heads[target.index(chains[end][0])] - tgt_points[-1])
                    if end else target.lengths[target.index(bones[-1])])
        src_edges = _fractions(np.append(np.linalg.norm(np.diff(src_points, axis=0), axis=1), src_last))
        tgt_edges = _fractions(np.append(np.linalg.norm(np.diff(tgt_points, axis=0), axis=1), tgt_last))
        quats = np.stack([matrix_to_quaternion(delta(j)) for j in run], axis=1)  # (N, R, 4)
        for k, t in enumerate(bones):
            lo, hi = tgt_edges[k], tgt_edges[k + 1]
            weights = np.clip(np.minimum(hi, src_edges[1:]) - np.maximum(lo, src_edges[:-1]), 0.0, None)
            out[t] = _mean_rotation(quats, weights)
    return out


def _aimed(joint: str, chains, aims) -> str:
    """The first mapped joint along ``joint``'s aims ('' for none)."""
    child, seen = aims.get(joint, ""), set()
    while child and child not in chains and child not in seen:
        seen.add(child)
        child = aims.get(child, "")
    return child if child in chains else ""


def _fractions(lengths: np.ndarray) -> np.ndarray:
    """Segment lengths -> their edges along the whole, from 0 to 1 (equal parts when all are zero)."""
    lengths = np.asarray(lengths, np.float64)
    if lengths.sum() <= 1e-12:
        lengths = np.ones_like(lengths)
    return np.concatenate([[0.0], np.cumsum(lengths) / lengths.sum()])


def _mean_rotation(quats: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of (N, R, 4) quaternions per frame, as (N, 3, 3) matrices (normalised sum,
    each turned to the same hemisphere as the heaviest; close enough for rotations a spine's
    neighbouring joints make)."""
    reference = quats[:, int(np.argmax(weights))]
    signs = np.where(np.sum(quats * reference[:, None], axis=-1) < 0, -1.0, 1.0)
    mean = np.sum(quats * signs[..., None] * weights[None, :, None], axis=1)
    return quaternion_to_matrix(mean / np.linalg.norm(mean, axis=-1, keepdims=True))


def _facing(source: Skeleton, target: Skeleton, bone_map, hips, up: np.ndarray) -> np.ndarray:
    """World rotation about ``up`` turning the source's left-to-right hip line onto the target's."""
    if not hips or not all(h in bone_map for h in hips):
        return np.eye(3)
    up = up / np.linalg.norm(up)

    def across(skeleton: Skeleton, names) -> np.ndarray:
        heads = skeleton.world_rest_heads()
        v = heads[skeleton.index(names[1])] - heads[skeleton.index(names[0])]
        return v - np.dot(v, up) * up

    a = across(source, hips)
    b = across(target, [bone_map[h] for h in hips])
    if np.linalg.norm(a) < 1e-9 or np.linalg.norm(b) < 1e-9:
        return np.eye(3)
    angle = np.arctan2(np.dot(np.cross(a, b), up), np.dot(a, b))
    k = np.array([[0.0, -up[2], up[1]], [up[2], 0.0, -up[0]], [-up[1], up[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def _rest_alignment(source: Skeleton, target: Skeleton, chains, aims, s_to_t, target_aims) -> dict[str, np.ndarray]:
    """Per mapped target bone, the rotation (target armature space) that points its rest direction
    along its source bone's rest direction; a chain turns as one, its first head to the next
    mapped head onto the source's run. An unmapped aim child is passed through to the first mapped
    joint along the aims. Bones without a mapped aim take their nearest mapped ancestor's
    alignment, keeping their rest offset to it."""
    src_heads = source.rest[:, :3, 3]
    tgt_heads = target.rest[:, :3, 3]
    out: dict[str, np.ndarray] = {}
    src_order = [source.names[i] for i in source.order if source.names[i] in chains]

    for s in src_order:
        bones = chains[s]
        child = _aimed(s, chains, aims)
        if child:
            a_s = s_to_t @ (src_heads[source.index(_chain_start(source, child, chains))]
                            - src_heads[source.index(_chain_start(source, s, chains))])
            a_t = (np.asarray(target_aims[bones[0]], np.float64) if len(bones) == 1 and bones[0] in target_aims
                   else tgt_heads[target.index(chains[child][0])] - tgt_heads[target.index(bones[0])])
            if np.linalg.norm(a_s) > 1e-9 and np.linalg.norm(a_t) > 1e-9:
                turn = rotation_between(a_t, a_s)
                out.update({t: turn for t in bones})
                continue
        ancestor = _mapped_ancestor(source, s, chains)
        inherited = out[chains[ancestor][-1]] if ancestor else np.eye(3)
        out.update({t: inherited for t in bones})
    return out


def _chain_start(source: Skeleton, joint: str, chains) -> str:
    """The source joint whose head a mapped joint's first target head stands for: the joint itself
    for a single bone, the start of its run for a chain."""
    return joint if len(chains[joint]) == 1 else _run_start(source, joint, chains)


def _run_start(skeleton: Skeleton, name: str, pairs) -> str:
    """The highest of ``name`` and its unmapped ancestors below the nearest mapped one."""
    start, b = name, skeleton.parents[skeleton.index(name)]
    while b >= 0 and skeleton.names[b] not in pairs:
        start, b = skeleton.names[b], skeleton.parents[b]
    return start


def _mapped_ancestor(skeleton: Skeleton, name: str, pairs) -> str | None:
    b = skeleton.parents[skeleton.index(name)]
    while b >= 0:
        if skeleton.names[b] in pairs:
            return skeleton.names[b]
        b = skeleton.parents[b]
    return None


# --- rotation channels for the target's rotation modes -------------------------------------------


def _axis_matrix(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def euler_to_matrix(euler: np.ndarray, order: str = "XYZ") -> np.ndarray:
    """Blender Euler angles (..., 3: x, y, z in radians) -> matrices; 'XYZ' applies X first."""
    euler = np.asarray(euler, np.float64)
    m = np.broadcast_to(np.eye(3), euler.shape[:-1] + (3, 3))
    for letter in order:
        a = _EULER_AXES[letter]
        m = _axis_matrix(a, euler[..., a]) @ m
    return m


def matrix_to_euler(matrix: np.ndarray, order: str = "XYZ") -> np.ndarray:
    """Rotation matrices -> Blender Euler angles (x, y, z) for ``order``, unwrapped along axis 0
    when given a sequence so keyframes do not jump by 2 pi."""
    if order not in EULER_ORDERS:
        raise RetargetError(f"unknown Euler order '{order}'; use one of {', '.join(EULER_ORDERS)}")
    m = np.asarray(matrix, np.float64)
    i, j, k = (_EULER_AXES[c] for c in order)
    # Even permutations of XYZ keep handedness; odd ones flip the sign of the angles.
    sign = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    # R = Rk Rj Ri: read the middle angle off R[k, i], the outer two off the k row / i column.
    middle = np.arcsin(np.clip(-sign * m[..., k, i], -1.0, 1.0))
    first = np.arctan2(sign * m[..., k, j], m[..., k, k])
    last = np.arctan2(sign * m[..., j, i], m[..., i, i])
    # Gimbal lock: the first and last axes coincide; put the whole turn on the first angle.
    locked = np.abs(m[..., k, i]) > 1.0 - 1e-9
    if locked.any():
        first = np.where(locked, np.arctan2(-sign * m[..., j, k], m[..., j, j]), first)
        last = np.where(locked, 0.0, last)
    out = np.zeros(m.shape[:-2] + (3,))
    out[..., i], out[..., j], out[..., k] = first, middle, last
    if out.ndim >= 2:
        out = np.unwrap(out, axis=0)
    return out


def continuous_quaternions(rotations: np.ndarray) -> np.ndarray:
    """(N, ..., 3, 3) -> (N, ..., 4) quaternions (w, x, y, z) whose sign never flips between frames,
    so Blender's per-channel interpolation between keys takes the short way."""
    return sign_continuous(matrix_to_quaternion(np.asarray(rotations, np.float64)))


def rotation_channels(rotations: np.ndarray, mode: str) -> np.ndarray:
    """(N, 3, 3) basis rotations -> per-frame channel values for a pose bone's ``rotation_mode``:
    QUATERNION (w, x, y, z), AXIS_ANGLE (angle, x, y, z) or an Euler order (x, y, z)."""
    if mode == "QUATERNION":
        return continuous_quaternions(rotations)
    if mode == "AXIS_ANGLE":
        q = continuous_quaternions(rotations)
        half = np.arccos(np.clip(q[..., 0], -1.0, 1.0))
        sin_half = np.sin(half)
        axis = np.where(sin_half[..., None] > 1e-9, q[..., 1:] / np.where(sin_half > 1e-9, sin_half, 1.0)[..., None], [0.0, 1.0, 0.0])
        return np.concatenate([2.0 * half[..., None], axis], axis=-1)
    return matrix_to_euler(rotations, mode)
