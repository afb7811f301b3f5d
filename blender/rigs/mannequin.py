"""A simple mannequin body for the SMPL-X armature, so motion is visible without SMPL-X files.

Tapered eight-sided limbs between joints and a few spheres (head, eyes, big joints), each part
rigidly bound to one bone. The geometry is made with NumPy in the SMPL-X frame from the rest
joints; only ``add_mannequin`` touches Blender.
"""
from __future__ import annotations

import bpy
import numpy as np

from ...rigs.skeleton import EYE_JOINTS, JAW_JOINT, JOINT_INDEX, JOINT_NAMES, children

_SIDES = 8
# (start radius, end radius) of the limb from a joint to each of its children, by joint name
# without its side.
_RADII = {
    "pelvis": (0.12, 0.12), "spine1": (0.12, 0.13), "spine2": (0.13, 0.14), "spine3": (0.14, 0.07),
    "neck": (0.05, 0.05), "collar": (0.06, 0.05), "shoulder": (0.05, 0.04), "elbow": (0.04, 0.03),
    "wrist": (0.016, 0.012), "hip": (0.075, 0.055), "knee": (0.05, 0.04), "ankle": (0.04, 0.035),
    "foot": (0.035, 0.025),
}
_FINGER_RADII = {1: (0.0105, 0.0095), 2: (0.0095, 0.0085), 3: (0.0085, 0.007)}
_FINGERS = ("index", "middle", "pinky", "ring", "thumb")
_JOINT_SPHERES = ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")


def _plain(name: str) -> str:
    for side in ("left_", "right_"):
        if name.startswith(side):
            return name[len(side):]
    return name


def _radii(joint: int) -> tuple[float, float]:
    name = _plain(JOINT_NAMES[joint])
    if name[:-1] in _FINGERS:
        return _FINGER_RADII[int(name[-1])]
    return _RADII[name]


def _basis(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(direction[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    u = np.cross(direction, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(direction, u)


class _Builder:
    def __init__(self):
        self.vertices: list[np.ndarray] = []
        self.faces: list[tuple[int, ...]] = []
        self.bones: list[int] = []
        self.count = 0

    def _add(self, points: np.ndarray, faces, bone: int) -> None:
        self.vertices.append(points)
        self.faces.extend(tuple(self.count + i for i in face) for face in faces)
        self.bones.extend([bone] * len(points))
        self.count += len(points)

    def limb(self, start, end, r0: float, r1: float, bone: int) -> None:
        axis = end - start
        length = np.linalg.norm(axis)
        if length < 1e-6:
            return
        u, v = _basis(axis / length)
        angles = np.linspace(0, 2 * np.pi, _SIDES, endpoint=False)
        ring = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v
        points = np.concatenate([start + r0 * ring, end + r1 * ring, [start, end]])
        n = _SIDES
        faces = [(i, (i + 1) % n, n + (i + 1) % n, n + i) for i in range(n)]
        faces += [(2 * n, (i + 1) % n, i) for i in range(n)]
        faces += [(2 * n + 1, n + i, n + (i + 1) % n) for i in range(n)]
        self._add(points, faces, bone)

    def sphere(self, centre, radius: float, bone: int, segments: int = 10, rings: int = 6) -> None:
        polar = np.linspace(0, np.pi, rings + 1)[1:-1]
        azimuth = np.linspace(0, 2 * np.pi, segments, endpoint=False)
        ring_points = [
            np.stack([np.sin(p) * np.cos(azimuth), np.cos(p) * np.ones_like(azimuth), np.sin(p) * np.sin(azimuth)], 1)
            for p in polar
        ]
        points = np.concatenate([[[0.0, 1.0, 0.0]], *ring_points, [[0.0, -1.0, 0.0]]]) * radius + centre
        top, bottom = 0, len(points) - 1

        def at(ring: int, k: int) -> int:
            return 1 + ring * segments + k % segments

        faces = [(top, at(0, k + 1), at(0, k)) for k in range(segments)]
        for r in range(len(polar) - 1):
            faces += [(at(r, k), at(r, k + 1), at(r + 1, k + 1), at(r + 1, k)) for k in range(segments)]
        faces += [(bottom, at(len(polar) - 1, k), at(len(polar) - 1, k + 1)) for k in range(segments)]
        self._add(points, faces, bone)


def mannequin_geometry(rest: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]], np.ndarray]:
    """Vertices (V, 3) in the SMPL-X frame, faces, and the joint each vertex follows (V,)."""
    rest = np.asarray(rest, np.float64)
    build = _Builder()
    face_joints = {JAW_JOINT, *EYE_JOINTS}
    for joint, name in enumerate(JOINT_NAMES):
        plain = _plain(name)
        if joint in face_joints or plain == "head":
            continue
        r0, r1 = _radii(joint)
        kids = [c for c in children(joint) if c not in face_joints and _plain(JOINT_NAMES[c]) != "hip"]
        for child in kids:
            build.limb(rest[joint], rest[child], r0, r1, joint)
        if not kids:  # toes and fingertips: continue the incoming direction
            parent_direction = rest[joint] - rest[JOINT_INDEX[name[:-1] + "2"]] if plain[:-1] in _FINGERS else None
            if parent_direction is not None:
                tip = rest[joint] + 0.7 * parent_direction
            else:  # feet
                tip = rest[joint] + np.array([0.0, -0.01, 0.06])
            build.limb(rest[joint], tip, r0, r1, joint)
        if plain in _JOINT_SPHERES:
            build.sphere(rest[joint], r0, joint, segments=8, rings=5)
    # Hips: one bar across, following the pelvis.
    build.limb(rest[JOINT_INDEX["left_hip"]] * [1.35, 1, 1], rest[JOINT_INDEX["right_hip"]] * [1.35, 1, 1], 0.1, 0.1,
               JOINT_INDEX["pelvis"])
    head = JOINT_INDEX["head"]
    build.sphere(rest[head] + [0.0, 0.085, 0.01], 0.1, head, segments=12, rings=8)
    build.limb(rest[JAW_JOINT], rest[JAW_JOINT] + [0.0, -0.03, 0.05], 0.035, 0.025, JAW_JOINT)
    for eye in EYE_JOINTS:
        build.sphere(rest[eye], 0.014, eye, segments=8, rings=5)
    return np.concatenate(build.vertices), build.faces, np.array(build.bones)


def add_mannequin(context, armature, rest: np.ndarray):
    """A mesh object parented to ``armature``, each vertex weighted fully to one bone."""
    vertices, faces, bones = mannequin_geometry(rest)
    name = f"{armature.name}_body"
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(vertices.tolist(), [], faces)
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), bool))
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    for collection in armature.users_collection:
        collection.objects.link(obj)
    # The mesh is modelled in armature space, so it sits under the armature with no offset.
    obj.parent = armature
    modifier = obj.modifiers.new("Armature", "ARMATURE")
    modifier.object = armature
    for joint in np.unique(bones):
        group = obj.vertex_groups.new(name=JOINT_NAMES[joint])
        group.add(np.flatnonzero(bones == joint).tolist(), 1.0, "REPLACE")
    material = bpy.data.materials.new(f"{name}_material")
    material.diffuse_color = (0.72, 0.66, 0.6, 1.0)
    mesh.materials.append(material)
    return obj
