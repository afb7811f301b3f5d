"""The external worker: ``python -m gestura.inference.worker``, run by another interpreter.

Blender starts this in the Python the user configured (one with PyTorch, CUDA, mamba-ssm), so
CUDA is never loaded into Blender's own process. ``engines/external.py`` is the other end;
``worker_protocol.py`` holds what both ends share.

Protocol (version 1), all JSON, one object per line:

- parent -> stdin: first the request line
  ``{"protocol": 1, "audio": "x.npy" (float32 16 kHz mono) | "x.wav", "output": "result.npz",
  "checkpoint": path | null, "style", "seed", "temperature", "style_strength", "plan_strength", "top_k", "top_p", "parts": [...],
  "start_pose": "pose.npz" | null, "device": "auto" | "cpu" | "cuda", "sampling_steps": int | null}``,
  then optionally ``{"command": "cancel"}``. End of input also cancels (the parent went away).
- worker -> stdout: ``{"event": "hello"}`` at start, ``{"event": "ready", "torch": ..., "cuda": ...}``
  once torch imported, ``{"event": "progress", "fraction", "message"}``, ``{"event": "warning",
  "message"}``, and exactly one final ``{"event": "done", "output"}`` | ``{"event": "cancelled"}`` |
  ``{"event": "error", "kind": "request" | "no_torch" | "missing_module" | "generation" | "crash",
  "message"}``.

The result goes through ``output``: an npz (no pickles) with ``poses``, ``trans``,
``expressions``, ``fps``, ``betas``. Anything else printed on stdout (by torch or user site
hooks) is redirected to stderr so it cannot corrupt the protocol.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import traceback
import warnings

from .worker_protocol import PROTOCOL, load_motion_npz, save_motion_npz

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NO_TORCH = 3
EXIT_CANCELLED = 4


class _Channel:
    """Protocol lines on the real stdout; everything else that writes to fd 1 lands on stderr."""

    def __init__(self) -> None:
        sys.stdout.flush()
        self._out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._lock = threading.Lock()

    def send(self, event: str, **fields) -> None:
        line = json.dumps({"event": event, **fields})
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


class _CancelWatch(threading.Thread):
    """Reads the parent's later commands; a cancel command or a closed stdin sets the flag."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True, name="gestura-cancel-watch")
        self.stream = stream
        self.flag = threading.Event()

    def run(self) -> None:
        for line in self.stream:
            try:
                command = json.loads(line).get("command")
            except (ValueError, AttributeError):
                continue
            if command == "cancel":
                break
        self.flag.set()


def _request_error(channel: _Channel, message: str) -> int:
    channel.send("error", kind="request", message=message)
    return EXIT_ERROR


def _load_inputs(request: dict):
    import numpy as np

    audio = request["audio"]
    if str(audio).endswith(".npy"):
        audio = np.load(audio, allow_pickle=False)
    start_pose = load_motion_npz(request["start_pose"]) if request.get("start_pose") else None
    return audio, start_pose


def serve(channel: _Channel, stdin) -> int:
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    channel.send("hello", protocol=PROTOCOL, python=sys.version.split()[0], pid=os.getpid(), package=package)
    line = stdin.readline()
    if not line:
        channel.send("cancelled")
        return EXIT_CANCELLED
    try:
        request = json.loads(line)
    except ValueError:
        return _request_error(channel, "the request line is not JSON")
    if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
        return _request_error(channel, f"unsupported request (this worker speaks protocol {PROTOCOL}): "
                                       "Blender and the worker come from different Gestura versions")
    for key in ("audio", "output"):
        if not request.get(key):
            return _request_error(channel, f"the request has no '{key}'")

    try:
        import torch
    except Exception as error:  # ImportError, or a broken install (missing CUDA libraries: OSError)
        channel.send("error", kind="no_torch",
                     message=f"Python {sys.version.split()[0]} at {sys.executable} cannot import PyTorch ({error}): "
                             "install torch into that environment or choose another engine")
        return EXIT_NO_TORCH
    try:
        from ..errors import GesturaError
        from . import pipeline
    except ImportError as error:
        missing = getattr(error, "name", None) or str(error)
        channel.send("error", kind="missing_module",
                     message=f"Python at {sys.executable} lacks '{missing}', which Gestura needs: "
                             f"pip install {missing} into that environment")
        return EXIT_ERROR
    # Generation runs frame by frame on small matrices: more intra-op threads only add
    # synchronisation (on a busy 2-core machine 2 threads were 20-30x slower than 1).
    torch.set_num_threads(1)
    channel.send("ready", torch=torch.__version__, cuda=bool(torch.cuda.is_available()),
                 gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)

    watch = _CancelWatch(stdin)
    watch.start()

    def forward_warning(message, category, filename, lineno, file=None, line=None):
        # The parent shows it to the user as one line: the text alone, no Python class name.
        channel.send("warning", message=str(message))

    warnings.showwarning = forward_warning

    try:
        audio, start_pose = _load_inputs(request)
        generation = pipeline.GenerationRequest(
            audio=audio,
            style=request.get("style"),
            seed=int(request.get("seed", 0)),
            temperature=float(request.get("temperature", pipeline.DEFAULT_TEMPERATURE)),
            style_strength=float(request.get("style_strength", pipeline.DEFAULT_STYLE_STRENGTH)),
            plan_strength=float(request.get("plan_strength", pipeline.DEFAULT_PLAN_STRENGTH)),
            top_k=request.get("top_k"),
            top_p=request.get("top_p"),
            parts=tuple(request["parts"]) if request.get("parts") is not None else pipeline.GenerationRequest.parts,
            start_pose=start_pose,
            device=request.get("device", "auto"),
            sampling_steps=request.get("sampling_steps"),
        )
        motion = pipeline.generate(
            generation,
            checkpoint=request.get("checkpoint"),
            engine="torch",
            progress=lambda fraction, message="": channel.send("progress", fraction=float(fraction), message=str(message)),
            cancel=watch.flag.is_set,
        )
        save_motion_npz(motion, request["output"])
    except pipeline.Cancelled:
        channel.send("cancelled")
        return EXIT_CANCELLED
    except (GesturaError, ValueError, OSError) as error:
        channel.send("error", kind="generation", message=str(error))
        return EXIT_ERROR
    except Exception as error:  # a bug or a torch failure: report it, with the traceback on stderr
        traceback.print_exc()
        channel.send("error", kind="crash", message=f"{type(error).__name__}: {error}")
        return EXIT_ERROR
    channel.send("done", output=request["output"])
    return EXIT_OK


def main() -> int:
    channel = _Channel()
    return serve(channel, sys.stdin)


if __name__ == "__main__":
    sys.exit(main())
