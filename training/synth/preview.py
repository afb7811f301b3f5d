"""A look at motion without Blender: stick-figure image strips and animated GIFs (matplotlib).

    python -m gestura.training.synth.preview MOTION.npz OUT.png [--start S] [--seconds S] [--per-second K]
    python -m gestura.training.synth.preview MOTION.npz OUT.gif [--seconds S]

The strip shows the body from the front (top row) and from its left side (bottom row, facing
right) at K frames per second; under it, both wrists' speed over the whole clip, where gesture
strokes show as peaks and their ends (the motion beats) as dips.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ...rigs.kinematics import forward_kinematics
from ...rigs.motion import Motion
from ...rigs.skeleton import JOINT_INDEX, PARENTS

_SKIP = {JOINT_INDEX["left_eye_smplhf"], JOINT_INDEX["right_eye_smplhf"], JOINT_INDEX["jaw"]}
_LEFT_COLOUR, _RIGHT_COLOUR, _CENTRE_COLOUR = "#1f77b4", "#d62728", "#333333"


def _bone_colour(joint: int) -> str:
    from ...rigs.skeleton import JOINT_NAMES

    name = JOINT_NAMES[joint]
    return _LEFT_COLOUR if name.startswith("left") else _RIGHT_COLOUR if name.startswith("right") else _CENTRE_COLOUR


def _draw(ax, points: np.ndarray, horizontal: int, flip: float = 1.0) -> None:
    """Bones of one frame; ``horizontal`` picks x (front view) or z (side view) as the image's x."""
    for joint, parent in enumerate(PARENTS):
        if parent < 0 or joint in _SKIP:
            continue
        finger = joint >= 25
        a, b = points[parent], points[joint]
        ax.plot([flip * a[horizontal], flip * b[horizontal]], [a[1], b[1]], color=_bone_colour(joint),
                lw=0.7 if finger else 2.2, solid_capstyle="round")
    head = points[JOINT_INDEX["head"]]
    ax.add_patch(__import__("matplotlib.patches", fromlist=["Circle"]).Circle(
        (flip * head[horizontal], head[1] + 0.07), 0.085, fill=False, color=_CENTRE_COLOUR, lw=1.5))
    jaw = points[JOINT_INDEX["jaw"]]
    ax.plot([flip * head[horizontal], flip * jaw[horizontal]], [head[1], jaw[1]], color="#999999", lw=1.0)


def joint_positions(motion: Motion, rest_joints=None) -> np.ndarray:
    if rest_joints is None:
        from ...rigs.rest_skeleton import default_rest_joints

        rest_joints = default_rest_joints()
    positions, _ = forward_kinematics(motion.poses, motion.trans, rest_joints)
    return positions


def render_strip(motion: Motion, path, start: float = 0.0, seconds: float = 6.0, per_second: float = 2.0,
                 title: str | None = None, rest_joints=None) -> Path:
    """Write a PNG strip: front row, side row, wrist-speed plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = joint_positions(motion, rest_joints)
    fps = motion.fps
    first = int(round(start * fps))
    last = min(motion.num_frames, int(round((start + seconds) * fps)))
    if last <= first:
        raise ValueError(f"the clip is {motion.duration:.2f} s long: nothing to show from {start:.2f} s")
    frames = np.arange(first, last, max(1, int(round(fps / per_second))))
    cols = len(frames)
    fig = plt.figure(figsize=(1.45 * cols, 7.4))
    grid = fig.add_gridspec(3, cols, height_ratios=[3, 3, 1.4], hspace=0.08, wspace=0.0)
    centre = pos[:, 0].mean(axis=0)
    for c, f in enumerate(frames):
        for row, (horizontal, label) in enumerate(((0, "front"), (2, "side"))):
            ax = fig.add_subplot(grid[row, c])
            p = pos[f] - np.array([centre[0], 0.0, centre[2]])
            _draw(ax, p, horizontal)
            ax.set_xlim(-0.55, 0.55)
            ax.set_ylim(-1.0, 0.8)
            ax.set_aspect("equal")
            ax.axhline(-0.975, color="#bbbbbb", lw=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if row == 0:
                ax.set_title(f"{f / fps:.1f} s", fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    ax = fig.add_subplot(grid[2, :])
    t = np.arange(motion.num_frames) / fps
    for joint, colour, name in ((JOINT_INDEX["left_wrist"], _LEFT_COLOUR, "left wrist"),
                                (JOINT_INDEX["right_wrist"], _RIGHT_COLOUR, "right wrist")):
        speed = np.linalg.norm(np.gradient(pos[:, joint], axis=0), axis=-1) * fps
        ax.plot(t, speed, color=colour, lw=0.9, label=name)
    ax.axvspan(frames[0] / fps, frames[-1] / fps, color="#eeeeee", zorder=0)
    ax.set_xlim(0, t[-1])
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("speed m/s", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def gif_delays(frames: np.ndarray, end: int, fps: float) -> list[int]:
    """Display time (ms, whole centiseconds) of GIF images showing motion ``frames`` (ascending
    indices) of a clip at ``fps`` that ends at frame ``end`` (exclusive).

    GIF delays are whole centiseconds, so 1/15 s cannot be stored: a fixed 6 cs plays 11% fast.
    Each image instead lasts until the next one starts, both rounded to a centisecond on the
    clip's clock (7, 6, 7, ... cs at 15 fps), so the delays add up to the clip's duration.
    """
    starts = np.append(np.asarray(frames, np.float64), end) - frames[0]
    centiseconds = np.round(starts * 100.0 / fps).astype(int)
    return [10 * int(d) for d in np.diff(centiseconds)]


def render_gif(motion: Motion, path, start: float = 0.0, seconds: float = 8.0, fps: float = 15.0,
               rest_joints=None) -> Path:
    """Write an animated GIF: front and side views side by side, about ``fps`` images per second
    (every k-th motion frame), playing in real time (``gif_delays``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    pos = joint_positions(motion, rest_joints)
    first = int(round(start * motion.fps))
    last = min(motion.num_frames, int(round((start + seconds) * motion.fps)))
    if last <= first:
        raise ValueError(f"the clip is {motion.duration:.2f} s long: nothing to show from {start:.2f} s")
    frames = np.arange(first, last, max(1, int(round(motion.fps / fps))))
    centre = pos[:, 0].mean(axis=0)
    fig, axes = plt.subplots(1, 2, figsize=(5, 4))

    images = []
    for frame in frames:
        for ax, horizontal in zip(axes, (0, 2)):
            ax.clear()
            _draw(ax, pos[frame] - np.array([centre[0], 0.0, centre[2]]), horizontal)
            ax.set_xlim(-0.6, 0.6)
            ax.set_ylim(-1.0, 0.8)
            ax.set_aspect("equal")
            ax.axis("off")
        axes[0].set_title(f"{frame / motion.fps:.1f} s", fontsize=9)
        fig.canvas.draw()
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba()).copy()))
    plt.close(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=gif_delays(frames, last, motion.fps), loop=0)
    return path


def main(argv: list[str] | None = None) -> int:
    from ...rigs.motion_io import load_npz

    parser = argparse.ArgumentParser(prog="python -m gestura.training.synth.preview", description=__doc__.split("\n")[0])
    parser.add_argument("motion", help="motion .npz (BEAT2 / gestura layout)")
    parser.add_argument("out", help="output .png (image strip) or .gif (animation)")
    parser.add_argument("--start", type=float, default=0.0, help="first second shown")
    parser.add_argument("--seconds", type=float, default=6.0, help="how many seconds to show")
    parser.add_argument("--per-second", type=float, default=2.0, help="strip frames per second of motion")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    motion = load_npz(args.motion)
    out = Path(args.out)
    if out.suffix.lower() == ".gif":
        render_gif(motion, out, args.start, args.seconds)
    elif out.suffix.lower() == ".png":
        render_strip(motion, out, args.start, args.seconds, args.per_second, args.title or Path(args.motion).stem)
    else:
        print(f"preview: output must end in .png or .gif, got '{out.name}'", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
