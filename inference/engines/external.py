"""The ``external`` engine: run generation in another Python interpreter (the user's CUDA PyTorch).

Blender never loads torch or CUDA itself: it starts ``<python> -m gestura.inference.worker``
(protocol in ``worker.py``, shared parts in ``worker_protocol.py``), hands it the decoded audio through a temporary ``.npy`` file,
relays its progress, forwards a cancel, and reads the motion back from a temporary ``.npz``.
A worker that cannot start, lacks torch, crashes, or goes quiet for too long becomes an
``ExternalWorkerError`` whose message says what happened and what to do; the process is always
stopped and the temporary files removed.

The call blocks like ``pipeline.generate`` (the operator runs it on its worker thread), checking
``cancel`` and the worker's output ten times a second.
"""
from __future__ import annotations

import collections
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import Cancelled, GenerationError
from ..notices import notify
from ..worker_protocol import PROTOCOL, load_motion_npz, save_motion_npz
from .base import RequestEngine

# The folder holding the package's __init__.py: the repository, or the installed extension
# (``.../extensions/user_default/gestura``, imported in Blender as ``bl_ext.user_default.gestura``).
PACKAGE_DIR = Path(__file__).resolve().parents[2]

_SHIM = '''\
# Written by Gestura for one external worker run: makes ``import gestura`` load the package
# from the Blender extension's folder, whatever name Blender imported it under.
__path__ = [{package_dir!r}]
__file__ = {init_file!r}
with open(__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), __file__, "exec"))
del _source
'''


class ExternalWorkerError(GenerationError):
    """The external worker could not produce a result; ``details`` holds the tail of its stderr."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def in_blender() -> bool:
    """True inside Blender (or a Python that imported the bpy module)."""
    return "bpy" in sys.modules


# path -> (file modification time, healthy, time checked)
_HEALTH: dict = {}
_UNHEALTHY_RECHECK_S = 30.0


def external_healthy(python: str) -> bool:
    """Whether ``python`` runs and has PyTorch (``probe.probe_interpreter`` in a child process).

    A healthy answer is kept until the interpreter file changes; an unhealthy one is re-checked
    after 30 s, so installing torch into it is noticed without restarting Blender."""
    from ..probe import ProbeError, probe_interpreter

    path = os.path.expanduser(python or "")
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        notify(f"External Python '{path}' does not exist: generating in Blender's own Python instead "
               "(set Preferences > Add-ons > Gestura > External Python)", RuntimeWarning, stacklevel=2)
        return False
    cached = _HEALTH.get(path)
    now = time.monotonic()
    if cached and cached[0] == mtime and (cached[1] or now - cached[2] < _UNHEALTHY_RECHECK_S):
        return cached[1]
    try:
        report = probe_interpreter(path)
        healthy, reason = bool(report.torch), report.summary()
    except ProbeError as error:
        healthy, reason = False, str(error)
    if not healthy:
        notify(f"{reason}: generating in Blender's own Python instead", RuntimeWarning, stacklevel=2)
    _HEALTH[path] = (mtime, healthy, now)
    return healthy


def _exit_description(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _reader(stream, sink) -> None:
    for line in stream:
        sink(line)
    sink(None)


@dataclass
class ExternalWorker(RequestEngine):
    """One configured interpreter. ``run`` starts a fresh worker process per request."""

    name = "external"

    python: str
    # Importing torch and initialising CUDA can take a minute on a cold disk.
    startup_timeout: float = 180.0
    # Longest quiet spell allowed after the worker is ready (progress arrives every chunk).
    stall_timeout: float = 300.0
    # How long a cancelled worker gets to stop by itself before it is terminated.
    cancel_grace: float = 5.0
    warnings_seen: list = field(default_factory=list)
    last_pid: int | None = None  # the latest worker's process id, for diagnostics
    worker_package: str | None = None  # where the latest worker imported gestura from
    last_folder: str | None = None  # the latest run's temporary folder (removed when it ends)

    def describe(self) -> str:
        return f"external Python {self.python}"

    def _check_python(self) -> str:
        path = os.path.expanduser(self.python or "")
        if not path:
            raise ExternalWorkerError("No external Python is set: choose a Python executable with PyTorch "
                                      "in the Gestura preferences, or pick the NumPy engine")
        if not os.path.isfile(path) or not os.access(path, os.X_OK):
            raise ExternalWorkerError(f"External Python '{path}' is not an executable file: "
                                      "choose the python binary of an environment with PyTorch")
        return path

    def _environment(self, shim_root: Path) -> dict:
        env = dict(os.environ)
        # Blender's own Python settings must not leak into a different interpreter.
        for key in ("PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE"):
            env.pop(key, None)
        env["PYTHONPATH"] = str(shim_root)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONIOENCODING"] = "utf-8"
        return env

    @staticmethod
    def _write_shim(shim_root: Path) -> None:
        package = shim_root / "gestura"
        package.mkdir(parents=True)
        init_file = str(PACKAGE_DIR / "__init__.py")
        (package / "__init__.py").write_text(
            _SHIM.format(package_dir=str(PACKAGE_DIR), init_file=init_file), encoding="utf-8")

    def _prepare(self, request, checkpoint, folder: Path) -> dict:
        from ..audio import load_audio

        audio = request.audio
        if not isinstance(audio, np.ndarray):
            # Decoded here, with whatever this Python can read (Blender's aud inside Blender), so the
            # worker's environment needs no audio libraries.
            audio = load_audio(audio)
        audio_path = folder / "audio.npy"
        np.save(audio_path, np.ascontiguousarray(audio, dtype=np.float32), allow_pickle=False)

        start_pose = None
        if request.start_pose is not None:
            start_pose = str(folder / "start_pose.npz")
            save_motion_npz(request.start_pose, start_pose)

        if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
            checkpoint = getattr(checkpoint, "path", None)
            if checkpoint is None:
                raise ExternalWorkerError("The external engine needs the checkpoint as a file path, "
                                          "not a loaded checkpoint: pass its path")
        return {
            "protocol": PROTOCOL,
            "audio": str(audio_path),
            "output": str(folder / "result.npz"),
            "checkpoint": os.path.abspath(os.fspath(checkpoint)) if checkpoint is not None else None,
            "style": request.style,
            "seed": int(request.seed),
            "temperature": float(request.temperature),
            "style_strength": float(request.style_strength),
            "plan_strength": float(request.plan_strength),
            "top_k": int(request.top_k) if request.top_k is not None else None,
            "top_p": float(request.top_p) if request.top_p is not None else None,
            "parts": list(request.parts) if request.parts is not None else None,
            "start_pose": start_pose,
            "device": request.device,
            "sampling_steps": int(request.sampling_steps) if request.sampling_steps is not None else None,
        }

    def run(self, request, *, checkpoint=None, progress=None, cancel=None):
        """Generate ``request`` (a ``pipeline.GenerationRequest``) in the worker; returns a Motion."""
        python = self._check_python()
        progress = progress or (lambda fraction, message: None)
        folder = Path(tempfile.mkdtemp(prefix="gestura-worker-"))
        self.last_folder = str(folder)
        process = None
        try:
            progress(0.0, "Preparing audio for the external Python")
            message = self._prepare(request, checkpoint, folder)
            self._write_shim(folder / "path")
            progress(0.0, "Starting the external Python")
            try:
                process = subprocess.Popen(
                    [python, "-m", "gestura.inference.worker"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    cwd=str(folder), env=self._environment(folder / "path"),
                    text=True, encoding="utf-8", errors="replace", bufsize=1,
                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
                )
            except OSError as error:
                raise ExternalWorkerError(f"External Python '{python}' could not be started: "
                                          f"{error.strerror or error}") from None
            self.last_pid = process.pid
            try:
                result = self._converse(process, python, message, progress, cancel)
            except ExternalWorkerError as error:
                if error.details:
                    # Blender's system console is where a traceback can be read in full.
                    print(f"Gestura: output of the external Python worker ({python}):\n{error.details}",
                          file=sys.stderr)
                raise
            return _load_result(result)
        finally:
            if process is not None:
                _stop(process)
            shutil.rmtree(folder, ignore_errors=True)

    def _converse(self, process, python, message, progress, cancel) -> str:
        events: queue.Queue = queue.Queue()
        stderr_tail: collections.deque = collections.deque(maxlen=40)
        threading.Thread(target=_reader, args=(process.stdout, events.put), daemon=True).start()
        threading.Thread(target=_reader, args=(process.stderr, stderr_tail.append), daemon=True).start()

        def details() -> str:
            return "".join(line for line in stderr_tail if line)

        def last_error_line() -> str:
            lines = [line.strip() for line in stderr_tail if line and line.strip()]
            return lines[-1] if lines else "it printed nothing"

        try:
            process.stdin.write(json.dumps(message) + "\n")
            process.stdin.flush()
        except OSError:
            pass  # it died already; the exit is reported below with its stderr

        ready = False
        cancelled_at = None
        last_heard = time.monotonic()
        while True:
            try:
                line = events.get(timeout=0.1)
            except queue.Empty:
                line = ""
            now = time.monotonic()

            if line is None:  # stdout closed: the worker is gone without a final word
                code = process.wait()
                if cancelled_at is not None:
                    raise Cancelled("Generation cancelled")
                time.sleep(0.05)  # let the stderr reader catch the last lines
                if not ready:
                    raise ExternalWorkerError(
                        f"External Python '{python}' stopped before it was ready ({_exit_description(code)}): "
                        f"{last_error_line()}. Check that it is Python 3.11 or newer with numpy installed",
                        details())
                raise ExternalWorkerError(
                    f"The external Python worker stopped unexpectedly ({_exit_description(code)}): "
                    f"{last_error_line()}", details())

            if line:
                last_heard = now
                try:
                    event = json.loads(line)
                    kind = event["event"]
                except (ValueError, KeyError, TypeError):
                    kind = None
                    stderr_tail.append(line)  # not ours: keep it for the report
                if kind == "hello":
                    self.worker_package = event.get("package")
                    if self.worker_package and not _same_folder(self.worker_package, PACKAGE_DIR):
                        # Its own installed gestura won over ours: results may come from other code.
                        notify(f"The external Python runs Gestura from {self.worker_package}, not from "
                               f"{PACKAGE_DIR}: uninstall gestura from that environment", RuntimeWarning,
                               stacklevel=2)
                elif kind == "ready":
                    ready = True
                    device = f"CUDA on {event.get('gpu')}" if event.get("cuda") else "no CUDA"
                    progress(0.0, f"External PyTorch {event.get('torch')} ready ({device})")
                elif kind == "progress":
                    progress(float(event.get("fraction", 0.0)), str(event.get("message", "")))
                elif kind == "warning":
                    self.warnings_seen.append(event.get("message", ""))
                    notify(f"External Python: {event.get('message', '')}", RuntimeWarning, stacklevel=2)
                elif kind == "done":
                    if cancelled_at is not None:
                        raise Cancelled("Generation cancelled")
                    return event["output"]
                elif kind == "cancelled":
                    raise Cancelled("Generation cancelled")
                elif kind == "error":
                    raise ExternalWorkerError(_error_message(python, event), details())

            if cancelled_at is None and cancel is not None and cancel():
                cancelled_at = now
                try:
                    process.stdin.write(json.dumps({"command": "cancel"}) + "\n")
                    process.stdin.flush()
                except OSError:
                    pass
            if cancelled_at is not None and now - cancelled_at > self.cancel_grace:
                # It did not stop by itself (busy in a long GPU call): stop it.
                raise Cancelled("Generation cancelled")
            limit = self.stall_timeout if ready else self.startup_timeout
            if now - last_heard > limit:
                what = "showed no progress" if ready else "did not get ready"
                raise ExternalWorkerError(
                    f"The external Python worker {what} for {limit:.0f} s and was stopped: "
                    f"{'it may be stuck' if ready else 'importing PyTorch may be hanging'}; "
                    "try again, or use another engine", details())


def _same_folder(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _error_message(python: str, event: dict) -> str:
    kind, text = event.get("kind"), event.get("message", "")
    if kind == "no_torch":
        return f"External Python has no PyTorch: {text}"
    if kind == "missing_module":
        return f"The external Python cannot run Gestura: {text}"
    if kind == "request":
        return f"The external Python worker refused the request: {text}"
    if kind == "crash":
        return f"The external Python worker failed: {text} (details are in the console)"
    return text


def _stop(process: subprocess.Popen) -> None:
    """End the worker: closing stdin asks it to stop; then terminate, then kill."""
    if process.poll() is None:
        try:
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        try:
            stream.close()
        except (OSError, ValueError):
            pass


def _load_result(path: str):
    try:
        return load_motion_npz(path)
    except (OSError, KeyError, ValueError) as error:
        raise ExternalWorkerError(f"The external Python worker's result could not be read ({error}): "
                                  "try again; if it repeats, the worker's Gestura version may differ") from None
