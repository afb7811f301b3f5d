"""What both ends of the external engine share: the protocol version and the motion file format.

``engines/external.py`` (in Blender) and ``worker.py`` (in the other interpreter) import this
instead of each other, so neither end loads the other's machinery (the protocol is described in
``worker.py``). The motion file is an npz without pickles: ``poses``, ``trans``, ``expressions``,
``fps``, ``betas``.
"""
from __future__ import annotations

import os

PROTOCOL = 1

# numpy and Motion are imported in the functions: the worker must say hello (and name a missing
# module) before it imports anything an odd interpreter may lack.


def save_motion_npz(motion, path: str) -> None:
    """Write ``motion`` (a ``Motion``) next to its final name first, so the other end never reads half a file."""
    import numpy as np

    partial = path + ".partial.npz"
    np.savez(partial, poses=motion.poses, trans=motion.trans, expressions=motion.expressions,
             fps=np.float64(motion.fps), betas=motion.betas)
    os.replace(partial, path)


def load_motion_npz(path):
    """The ``Motion`` ``save_motion_npz`` wrote; OSError, KeyError or ValueError when it cannot be read."""
    import numpy as np

    from ..rigs.motion import Motion

    with np.load(path, allow_pickle=False) as data:
        return Motion(poses=data["poses"], trans=data["trans"], expressions=data["expressions"],
                      fps=float(data["fps"]), betas=data["betas"])
