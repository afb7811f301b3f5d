"""Run a generation on a background thread, with progress and cancel, for Blender's modal operator.

Blender's data may only be touched on the main thread, so the job receives plain values (a
``GenerationRequest``, a loaded checkpoint) and hands back a ``Motion``; the operator polls
``state()`` from a timer and applies the result itself. No bpy here: the job is tested directly.
"""
from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from ..inference.notices import Notices, collect

# work(progress, cancel) -> result; progress(fraction, message); cancel() -> bool
Work = Callable[[Callable[[float, str], None], Callable[[], bool]], Any]


@dataclass(frozen=True)
class JobState:
    fraction: float
    message: str
    finished: bool
    cancelled: bool
    elapsed: float


class GenerationJob:
    def __init__(self, work: Work, name: str = "gestura-generate") -> None:
        self._work = work
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._fraction = 0.0
        self._message = "Starting"
        self._result: Any = None
        self._error: BaseException | None = None
        self._traceback = ""
        # What the work told the user (``notices.notify`` on this job's thread), for the main thread.
        self.notices = Notices()
        self._started = 0.0
        self._ended: float | None = None
        # Daemon: a cancelled job still finishing its current chunk must not keep Blender from quitting.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "GenerationJob":
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def _progress(self, fraction: float, message: str) -> None:
        with self._lock:
            self._fraction = min(1.0, max(0.0, float(fraction)))
            self._message = str(message)

    def _run(self) -> None:
        try:
            with collect(into=self.notices):
                self._result = self._work(self._progress, self._cancel.is_set)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which reports it
            self._error = error
            self._traceback = traceback.format_exc()
        finally:
            self._ended = time.perf_counter()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def state(self) -> JobState:
        with self._lock:
            fraction, message = self._fraction, self._message
        finished = self._started > 0 and not self._thread.is_alive()
        end = self._ended if self._ended is not None else time.perf_counter()
        return JobState(fraction, message, finished, self._cancel.is_set(), end - self._started if self._started else 0.0)

    def outcome(self):
        """The finished job's result; re-raises its error on the calling (main) thread."""
        if self._thread.is_alive() or not self._started:
            raise RuntimeError("the generation job has not finished")
        if self._error is not None:
            raise self._error
        return self._result

    @property
    def error_traceback(self) -> str:
        return self._traceback
