"""Keyframe writing speed: Gestura's bulk writer against per-key ``keyframe_insert``.

Both key the same channels (55 bone quaternions + pelvis location) on a fresh SMPL-X armature;
the bulk writer is also timed with the 100 expression channels it normally adds.

    .venv/bin/python bench/bench_keyframes.py                      # 300, 1800, 9000 frames
    .venv/bin/python bench/bench_keyframes.py --insert-max-frames 1800

``keyframe_insert`` gets slower per key as curves grow, so 9,000 frames takes a very long time.
With ``--insert-max-frames`` below a size, that size's keyframe_insert time is EXTRAPOLATED
linearly from the largest measured size, printed as such and as a lower bound (the real growth
is faster than linear). Times are wall-clock and, in brackets, CPU seconds of this process (the
better figure on a busy shared machine).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def machine() -> str:
    import bpy

    return (
        f"{platform.platform()} | processor: {platform.processor() or platform.machine()} | "
        f"cpus: {os.cpu_count()} | Blender {bpy.app.version_string} (bpy module) | torch device: not used"
    )


def motion(frames: int):
    from gestura.rigs.motion import Motion

    rng = np.random.default_rng(0)
    poses = np.cumsum(rng.normal(scale=0.03, size=(frames, 55, 3)), axis=0)
    return Motion(poses, np.cumsum(rng.normal(scale=0.01, size=(frames, 3)), axis=0), rng.normal(size=(frames, 100)))


def fresh_rig():
    import bpy

    from gestura.blender.rigs import create_smplx_armature

    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps = 30
    return create_smplx_armature(bpy.context, "Bench", mannequin=False)


class Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def time_bulk(frames: int, expressions: bool) -> tuple[float, float]:
    from gestura.blender.rigs import write_motion

    clip = motion(frames)
    obj = fresh_rig()
    with Timer() as timer:
        write_motion(obj, clip, "bulk", expressions=expressions)
    return timer.wall, timer.cpu


def time_keyframe_insert(frames: int) -> tuple[float, float]:
    from gestura.rigs.rotations import axis_angle_to_quaternion
    from gestura.rigs.skeleton import JOINT_NAMES

    clip = motion(frames)
    quaternions = axis_angle_to_quaternion(clip.poses.astype(np.float64))
    obj = fresh_rig()
    obj.animation_data_create()
    bones = [obj.pose.bones[name] for name in JOINT_NAMES]
    for bone in bones:
        bone.rotation_mode = "QUATERNION"
    pelvis = bones[0]
    with Timer() as timer:
        for f in range(frames):
            frame = f + 1
            for j, bone in enumerate(bones):
                bone.rotation_quaternion = quaternions[f, j]
                bone.keyframe_insert("rotation_quaternion", frame=frame)
            pelvis.location = clip.trans[f]
            pelvis.keyframe_insert("location", frame=frame)
    return timer.wall, timer.cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[300, 1800, 9000])
    parser.add_argument("--insert-max-frames", type=int, default=None,
                        help="largest size to time keyframe_insert for real; larger sizes are extrapolated")
    args = parser.parse_args()

    import bpy  # noqa: F401 - Blender first, so its startup is not timed

    print(machine())
    print("channels: 55 bone quaternions (220 curves) + pelvis location (3 curves); bulk+expr adds 100 curves")
    print(f"{'frames':>7} {'bulk s (cpu)':>16} {'bulk+expr s (cpu)':>18} {'keyframe_insert s (cpu)':>26} {'ratio (cpu)':>12}")
    measured: list[tuple[int, float, float]] = []
    for frames in sorted(args.frames):
        bulk = min(time_bulk(frames, expressions=False) for _ in range(3))
        bulk_expr = min(time_bulk(frames, expressions=True) for _ in range(3))
        if args.insert_max_frames is None or frames <= args.insert_max_frames:
            wall, cpu = time_keyframe_insert(frames)
            measured.append((frames, wall, cpu))
            note = "measured"
        elif measured:
            base_frames, base_wall, base_cpu = measured[-1]
            wall, cpu = base_wall * frames / base_frames, base_cpu * frames / base_frames
            note = f"EXTRAPOLATED linearly from {base_frames} frames: a lower bound"
        else:
            wall = cpu = float("nan")
            note = "not measured"
        print(
            f"{frames:>7} {bulk[0]:>7.3f} ({bulk[1]:.3f}) {bulk_expr[0]:>8.3f} ({bulk_expr[1]:.3f}) "
            f"{wall:>15.2f} ({cpu:.2f}) {cpu / bulk[1]:>10.0f}x  keyframe_insert {note}"
        )


if __name__ == "__main__":
    main()
