"""Warnings meant for the user, and the one way front ends collect them to show them.

Library code (audio loading, engines) calls ``notify``. Without a collector it is an ordinary
Python warning, for scripts using the API. The CLI, the Blender operator, its background job
and the batch script run their work inside ``collect()`` and show each collected notice once, as
one line where their user looks (stderr, the status bar and info log, the per-file line).

Collectors belong to a thread (the Blender operator generates on a worker thread while the main
thread keeps running), and nested collectors all receive each notice. No bpy, no numpy.
"""
from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager

_local = threading.local()


def notify(message: str, category: type[Warning] = UserWarning, *, key: str | None = None,
           stacklevel: int = 2) -> None:
    """Tell the user ``message`` (one sentence, no trailing period).

    ``key`` says which notices are the same news: a collector keeps only the first notice per key
    (default: the message itself), so a check that runs twice on the same audio is said once.
    """
    collectors = getattr(_local, "collectors", None)
    if not collectors:
        warnings.warn(message, category, stacklevel=stacklevel + 1)
        return
    for collector in collectors:
        collector.add(message, key)


class Notices(list):
    """The messages collected, in the order they were first given (a list of str)."""

    def __init__(self):
        super().__init__()
        self._keys = set()

    def add(self, message: str, key: str | None = None) -> None:
        key = message if key is None else key
        if key not in self._keys:
            self._keys.add(key)
            self.append(message)


@contextmanager
def collect(into: Notices | None = None):
    """``with collect() as found:`` notices given in this thread meanwhile go to ``found`` (a
    ``Notices``) instead of the warnings machinery. ``into`` continues an earlier collection (the
    same input read, then generated from), so news it already holds is not said again."""
    found = Notices() if into is None else into
    collectors = getattr(_local, "collectors", None)
    if collectors is None:
        collectors = _local.collectors = []
    collectors.append(found)
    try:
        yield found
    finally:
        # By identity: two collectors holding the same messages compare equal.
        del collectors[next(i for i, c in enumerate(collectors) if c is found)]
