"""Decode audio with Blender's own sound library, ``aud`` (audaspace).

Blender ships no soundfile or scipy, but every Blender build with sound support ships ``aud``,
which reads whatever Blender's sequencer can play (wav, flac, ogg, mp3 and more through ffmpeg).
``audio.load_audio`` uses this when soundfile is missing. No bpy import: ``aud`` is a separate
module, importable in Blender's Python (and in the bpy wheels that are built with audaspace).
"""
from __future__ import annotations

import os

import numpy as np

from .errors import AudioError, UndecodableAudioError


def aud_available() -> bool:
    """True when Blender's ``aud`` module can be imported in this Python."""
    try:
        import aud  # noqa: F401
    except ImportError:
        return False
    return True


def _error(message: str, undecodable: bool = False) -> Exception:
    return (UndecodableAudioError if undecodable else AudioError)(message)


def decode_with_aud(path, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read a sound file with ``aud``: ``(samples float32 (n, channels) in [-1, 1], sample rate)``.

    With ``rate`` the sound is resampled by audaspace (highest quality); without it the file's
    own rate is kept, so callers can resample with their own (shared) code. The channels are kept:
    ``audio.prepare_waveform`` mixes them (``audio.mix_to_mono``), as for every decoder.
    """
    path = os.fspath(path)
    try:
        import aud
    except ImportError:
        raise _error("Blender's audio module 'aud' is not available in this Python: "
                     "install soundfile (pip install soundfile) or run inside Blender") from None
    from .audio import check_audio_path

    check_audio_path(path)
    try:
        sound = aud.Sound(path)
        native_rate = int(round(sound.specs[0]))
        if rate is not None and int(rate) != native_rate:
            # quality 3 = slowest, best; older audaspace took a bool here, which 3 also satisfies.
            sound = sound.resample(float(rate), 3)
        data = sound.data()
    except aud.error as error:
        raise _error(f"Blender could not read '{path}' as audio ({error}): "
                     "convert it to wav, flac, ogg or mp3", undecodable=True) from None
    samples = np.asarray(data, dtype=np.float32)
    if samples.size == 0:
        raise _error(f"Audio file '{path}' is empty (no samples): choose a recording with sound in it")
    samples = np.ascontiguousarray(samples if samples.ndim == 2 else samples.reshape(-1, 1))
    if not np.all(np.isfinite(samples)):
        raise _error(f"Audio file '{path}' decodes to invalid (NaN or infinite) samples: re-export it")
    return samples, int(rate) if rate is not None else native_rate
