"""Pauses: where the speech stops long enough for the body to rest.

A frame is a pause when it is not speech by the stroke rate's rule (``stroke_plan.spoken_frames``:
40 dB or more below the loudest frame so far, or digital silence), judged causally, frame by
frame, so that a stream and the whole clip find the same pauses. A code is in a pause
(``pause_codes``) when its frames and ``PAUSE_MARGIN`` frames either side all are: a quiet
stretch of 1.13 s that lines up with a code, so every pause of 1.23 s or more has one; the gaps
between words are shorter. The pipeline takes such
codes as at temperature 0, the model's most likely code, which in silence is rest (MODEL_CARD.md,
"Rest in pauses, smoother plan-reading decoders").

Room noise keeps most recordings' pauses within 40 dB of their speech. A rule relative to the
noise floor finds them (frames within 10 dB of the 5th percentile of the levels so far: six
runs of pause codes, 0.1-1.2 s long, on the spontaneous speaker of ``../shared/real-speech``), but was not
adopted: in those 1-2 s pauses the bundled model's most likely codes move about as much as in
speech (wrist speed 0.9-1.2x that elsewhere, five seeds), as the synthesizer that made its corpus
does on the same recording (0.6-1.1x), while in a long pause under noise it rests unaided.

NumPy only.
"""
from __future__ import annotations

import numpy as np

# Frames (0.5 s) either side of a code that must be pauses too.
PAUSE_MARGIN = 15


def pause_codes(pauses: np.ndarray, frames_per_code: int, margin: int = PAUSE_MARGIN) -> np.ndarray:
    """The codes that lie in a pause: pauses (margin + n r + margin,) bool, whether each frame of n
    codes of r frames, and of ``margin`` frames either side, is a pause (not ``spoken_frames``; a
    frame outside the audio is one) -> (n,) bool, True where all of a code's frames and of its
    margins are. ValueError when the length is not that of whole codes plus both margins."""
    pauses = np.asarray(pauses, bool)
    r, margin = int(frames_per_code), int(margin)
    n, rest = divmod(len(pauses) - 2 * margin, r)
    if n < 0 or rest:
        raise ValueError(f"{len(pauses)} frames are not whole codes of {r} frames plus {margin} either side")
    spoken_before = np.concatenate([[0], np.cumsum(~pauses)])  # speech frames before each frame
    first = np.arange(n) * r
    return spoken_before[first + r + 2 * margin] == spoken_before[first]
