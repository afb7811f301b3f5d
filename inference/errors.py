"""Errors shared by the pipeline and the engines (kept apart so neither imports the other for them)."""
from __future__ import annotations

from ..errors import GesturaError


class Cancelled(Exception):
    """The caller's ``cancel()`` returned True; nothing was produced (not an error to report)."""


class GenerationError(GesturaError, RuntimeError):
    """The request cannot be generated; the message says why and what to change."""


class AudioError(GesturaError, ValueError):
    """Audio that cannot be used; the message names the file, the problem and the fix."""


class UndecodableAudioError(AudioError):
    """A decoder does not recognise the file (as opposed to a file it reads but finds unusable)."""


class EngineError(GesturaError, RuntimeError):
    """The requested engine cannot run here; the message says why and what to choose instead."""
