"""Speech features from a 16 kHz waveform, frame-aligned to 30 fps. NumPy only.

The same code runs in the PyTorch engine, the training data loader and the NumPy engine inside a
stock Blender, so it uses nothing but numpy.

Frame ``i`` is centred exactly on sample ``round(i * 16000 / 30)``: positions are computed with
integer arithmetic from ``i``, never by accumulating a rounded hop, so an hour of audio ends on
the same sample as the motion (no drift). Each frame is a 1024-sample (64 ms) Hann window around
its centre, zero-padded beyond the ends of the clip.

Per frame (``FEATURE_DIM`` = 132 numbers):
``[log-mel (64), log energy, onset strength, d log-mel (64), d energy, d onset]``
where onset strength is the mean positive rise of the log-mel bands since the previous frame, and
``d`` is the backward difference to the previous frame (0 at frame 0). With ``pitch=True`` two
more columns follow (``PITCH_NAMES``, the stroke planner's, ``config.planner_pitch``): voicing and
pitch from the frame's autocorrelation (``_pitch``). Only backward differences
are used, so frame ``i`` needs audio up to ``i/30 s + 32 ms`` and nothing later: streaming and
whole-clip features are the same numbers (``FeatureStream``).

Frames are computed in fixed blocks of ``BLOCK`` frames at absolute positions, in both the
whole-clip and the streaming path, so that the two perform identical arithmetic.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
FPS = 30
N_FFT = 1024
N_MELS = 64
F_MIN = 60.0
F_MAX = 7600.0
BLOCK = 16  # frames per computation block (about 0.5 s): bounds the streaming latency
FEATURE_DIM = 2 * N_MELS + 4
FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"logmel{i}" for i in range(N_MELS)) + ("energy", "onset")
    + tuple(f"d_logmel{i}" for i in range(N_MELS)) + ("d_energy", "d_onset")
)
# Voicing: the normalised autocorrelation at the best period in F0_MIN-F0_MAX (0 for silence, near 1
# for a clear voiced sound); pitch: log2(f0 / 100 Hz) of that period. The synthesizer ranks
# syllables for strokes by pitch as much as by loudness, as speakers mark stress by pitch, and
# log-mel bands are too wide to resolve it.
PITCH_NAMES: tuple[str, ...] = ("voicing", "pitch")
PITCH_DIM = len(PITCH_NAMES)
F0_MIN, F0_MAX = 60.0, 400.0  # Hz: the pitch range searched
_LOG_FLOOR = 1e-8
# A period within this share of the best one is preferred when shorter: a multiple of the true
# period correlates almost as well, and the octave below would be a wrong pitch.
_OCTAVE_TOLERANCE = 0.9


def energy_db(features: np.ndarray) -> np.ndarray:
    """Feature frames (n, F), not normalised -> (n,) each frame's RMS level in dB (full scale 0)."""
    return (20.0 / np.log(10.0)) * np.asarray(features, np.float64)[:, FEATURE_NAMES.index("energy")]


def frame_center(i) -> np.ndarray:
    """Sample index of frame ``i``'s centre: ``round(i * 16000 / 30)`` in exact integer arithmetic."""
    i = np.asarray(i, dtype=np.int64)
    return (2 * i * SAMPLE_RATE + FPS) // (2 * FPS)


def num_frames(num_samples: int) -> int:
    """Frames whose centre time ``i / 30`` lies inside a clip of ``num_samples`` samples at 16 kHz."""
    num_samples = int(num_samples)
    if num_samples <= 0:
        return 0
    return -(-num_samples * FPS // SAMPLE_RATE)


def _mel_filterbank() -> np.ndarray:
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = mel_to_hz(np.linspace(hz_to_mel(F_MIN), hz_to_mel(F_MAX), N_MELS + 2))
    bins = np.arange(N_FFT // 2 + 1) * SAMPLE_RATE / N_FFT
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (bins[None, :] - lower) / (centre - lower)
    fall = (upper - bins[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rise, fall))
    # Equal area per band, so wide high bands do not dominate the log energies.
    weights *= 2.0 / (upper - lower)
    return weights.T.astype(np.float32)  # (513, 64)


_MEL = _mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
_OFFSETS = np.arange(N_FFT, dtype=np.int64) - N_FFT // 2
_LAGS = np.arange(int(SAMPLE_RATE / F0_MAX), int(np.ceil(SAMPLE_RATE / F0_MIN)) + 1)
# The Hann window's own autocorrelation: dividing by it undoes the taper's decay with lag
# (Boersma 1993, "Accurate short-term analysis of the fundamental frequency").
_WINDOW_AC = np.fft.irfft(np.abs(np.fft.rfft(_WINDOW, 2 * N_FFT)) ** 2)[:_LAGS[-1] + 2].astype(np.float32)


def feature_width(pitch: bool) -> int:
    """Columns per frame: ``FEATURE_DIM``, plus ``PITCH_DIM`` with ``pitch``."""
    return FEATURE_DIM + (PITCH_DIM if pitch else 0)


def normalize(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Feature frames (n, ``feature_width``) -> float32 (n, same): the ``FEATURE_DIM`` speech
    features standardised by a checkpoint's audio statistics ``mean``, ``std`` (FEATURE_DIM,);
    voicing and pitch, already of unit scale, as they are."""
    out = np.array(features, np.float32)
    out[:, :FEATURE_DIM] = (out[:, :FEATURE_DIM] - mean) / std
    return out


def _pitch(frames: np.ndarray) -> np.ndarray:
    """Windowed frames (n, N_FFT) -> (n, 2) float32: voicing in [0, 1] and pitch ``log2(f0 / 100)``.

    The autocorrelation (zero-padded FFT, so not circular) divided by the window's, normalised by
    its value at lag 0; the best lag in 60-400 Hz, or the shortest one within
    ``_OCTAVE_TOLERANCE`` of it, refined by a parabola through its neighbours. The frame's own
    (window-weighted) mean is taken out first, so a DC offset does not read as a voice. Silence,
    and frames with no correlation peak in the range (hum below 60 Hz), give voicing 0 and pitch 0."""
    frames = frames - (frames.sum(axis=1) / _WINDOW.sum())[:, None] * _WINDOW
    ac = np.fft.irfft(np.abs(np.fft.rfft(frames, 2 * N_FFT, axis=1)) ** 2, axis=1)[:, :len(_WINDOW_AC)] / _WINDOW_AC
    energy = ac[:, 0]
    audible = energy > _LOG_FLOOR
    norm = np.where(audible, energy, 1.0)[:, None]
    r = ac[:, _LAGS[0] - 1:_LAGS[-1] + 2] / norm  # lags _LAGS with one neighbour each side
    inner = r[:, 1:-1]
    best = inner.max(axis=1)
    peak = (inner >= r[:, :-2]) & (inner >= r[:, 2:]) & (inner >= _OCTAVE_TOLERANCE * best[:, None])
    k = np.argmax(peak, axis=1)  # the first (shortest) such lag
    rows = np.arange(len(frames))
    left, centre, right = r[rows, k], r[rows, k + 1], r[rows, k + 2]
    curve = left - 2 * centre + right
    shift = np.where(curve < 0, 0.5 * (left - right) / np.where(curve < 0, curve, -1.0), 0.0)
    lag = _LAGS[k] + np.clip(shift, -0.5, 0.5)
    found = audible & peak.any(axis=1) & (best > 0)
    voicing = np.where(found, np.clip(centre, 0.0, 1.0), 0.0)
    pitch = np.where(found, np.log2(SAMPLE_RATE / lag / 100.0), 0.0)
    return np.stack([voicing, pitch], axis=1).astype(np.float32)


class _Carry:
    """What the next block needs from the previous frame (for the backward differences)."""

    def __init__(self) -> None:
        self.logmel = None
        self.energy = None
        self.onset = None


def _windowed(segment: np.ndarray, segment_start: int, first: int, stop: int) -> np.ndarray:
    """The Hann-windowed samples (stop - first, N_FFT) of frames ``[first, stop)``, from
    ``segment``, which holds the samples from ``segment_start`` on."""
    index = frame_center(np.arange(first, stop))[:, None] + _OFFSETS[None, :] - segment_start
    return segment[index] * _WINDOW


def _block(segment: np.ndarray, segment_start: int, first: int, stop: int, carry: _Carry,
           pitch: bool = False) -> np.ndarray:
    """Features of frames ``[first, stop)`` (``feature_width(pitch)`` columns); ``segment`` holds
    the samples from ``segment_start`` on that those windows need (zeros where the clip has none)."""
    frames = _windowed(segment, segment_start, first, stop)
    power = np.abs(np.fft.rfft(frames, axis=1)).astype(np.float32) ** 2
    logmel = np.log(power @ _MEL + _LOG_FLOOR)
    energy = 0.5 * np.log(np.mean(frames * frames, axis=1) + _LOG_FLOOR)
    prev_logmel = np.concatenate([logmel[:1] if carry.logmel is None else carry.logmel[None], logmel[:-1]])
    onset = np.mean(np.maximum(0.0, logmel - prev_logmel), axis=1)
    if carry.logmel is None:
        onset[0] = 0.0
    prev_energy = np.concatenate([[energy[0] if carry.energy is None else carry.energy], energy[:-1]])
    prev_onset = np.concatenate([[onset[0] if carry.onset is None else carry.onset], onset[:-1]])
    out = np.concatenate(
        [logmel, energy[:, None], onset[:, None], logmel - prev_logmel,
         (energy - prev_energy)[:, None], (onset - prev_onset)[:, None]] + ([_pitch(frames)] if pitch else []), axis=1
    ).astype(np.float32)
    carry.logmel, carry.energy, carry.onset = logmel[-1], energy[-1], onset[-1]
    return out


def _check_wave(wave) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"audio_features needs a mono waveform (1-D array), got shape {wave.shape}")
    return wave


def _segment(wave: np.ndarray, wave_start: int, start: int, stop: int) -> np.ndarray:
    """Samples ``[start, stop)`` of a clip whose samples from ``wave_start`` on are ``wave``;
    zeros outside the clip."""
    out = np.zeros(stop - start, np.float32)
    lo, hi = max(start, wave_start), min(stop, wave_start + len(wave))
    if hi > lo:
        out[lo - start:hi - start] = wave[lo - wave_start:hi - wave_start]
    return out


def _block_span(first: int, stop: int) -> tuple[int, int]:
    return int(frame_center(first)) - N_FFT // 2, int(frame_center(stop - 1)) + N_FFT // 2


def _by_blocks(wave16k, width: int, block) -> np.ndarray:
    """``(num_frames(len(wave)), width)`` float32: ``block(segment, segment_start, first, stop)``
    of each ``BLOCK`` of frames of a whole mono 16 kHz waveform, in order."""
    wave = _check_wave(wave16k)
    total = num_frames(len(wave))
    out = np.zeros((total, width), np.float32)
    for first in range(0, total, BLOCK):
        stop = min(first + BLOCK, total)
        lo, hi = _block_span(first, stop)
        out[first:stop] = block(_segment(wave, 0, lo, hi), lo, first, stop)
    return out


def audio_features(wave16k, pitch: bool = False) -> np.ndarray:
    """``(num_frames(len(wave)), feature_width(pitch))`` float32 features of a mono 16 kHz waveform."""
    carry = _Carry()
    return _by_blocks(wave16k, feature_width(pitch),
                      lambda segment, lo, first, stop: _block(segment, lo, first, stop, carry, pitch))


def pitch_features(wave16k) -> np.ndarray:
    """``(num_frames(len(wave)), PITCH_DIM)`` float32 voicing and pitch of a mono 16 kHz waveform:
    the last columns of ``audio_features(wave, pitch=True)``, without computing the others."""
    return _by_blocks(wave16k, PITCH_DIM, lambda segment, lo, first, stop: _pitch(_windowed(segment, lo, first, stop)))


class FeatureStream:
    """Features of audio that arrives in pieces: ``push`` returns the frames that became complete,
    ``finish`` the rest. The concatenation equals ``audio_features(wave, pitch)`` of the whole clip
    exactly."""

    def __init__(self, pitch: bool = False) -> None:
        self._pitch = pitch
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # absolute sample index of _buffer[0]
        self._received = 0
        self._next_frame = 0
        self._carry = _Carry()
        self._finished = False

    @property
    def samples_received(self) -> int:
        return self._received

    @property
    def frames_done(self) -> int:
        return self._next_frame

    def push(self, samples) -> np.ndarray:
        if self._finished:
            raise RuntimeError("FeatureStream.push after finish")
        samples = _check_wave(samples)
        self._buffer = np.concatenate([self._buffer, samples])
        self._received += len(samples)
        blocks = []
        while True:
            first, stop = self._next_frame, self._next_frame + BLOCK
            lo, hi = _block_span(first, stop)
            if hi > self._received:  # the block's last window is not complete yet
                break
            blocks.append(self._compute(first, stop))
        return np.concatenate(blocks) if blocks else np.zeros((0, feature_width(self._pitch)), np.float32)

    def finish(self) -> np.ndarray:
        self._finished = True
        total = num_frames(self._received)
        blocks = []
        while self._next_frame < total:
            blocks.append(self._compute(self._next_frame, min(self._next_frame + BLOCK, total)))
        return np.concatenate(blocks) if blocks else np.zeros((0, feature_width(self._pitch)), np.float32)

    def _compute(self, first: int, stop: int) -> np.ndarray:
        lo, hi = _block_span(first, stop)
        wave = self._buffer
        segment = _segment(wave, self._buffer_start, lo, hi)
        out = _block(segment, lo, first, stop, self._carry, self._pitch)
        self._next_frame = stop
        # Keep only what later windows can still reach.
        keep_from = max(self._buffer_start, int(frame_center(stop)) - N_FFT // 2)
        self._buffer = self._buffer[keep_from - self._buffer_start:]
        self._buffer_start = keep_from
        return out
