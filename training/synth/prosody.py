"""What the gesture synthesizer hears in a speech waveform: loudness envelope, syllable nuclei,
pitch (autocorrelation f0 tracker), pitch accents and phrases. NumPy and SciPy only.

Everything is sampled on a 100 Hz analysis grid (``HOP`` = 10 ms); times are in seconds.
Syllable nuclei are prominent peaks of a smoothed band-limited envelope (Mermelstein's idea);
each nucleus also gets an onset time, the steepest loudness rise before it, because the ear and
onset detectors (and the BC metric) place a syllable's beat at its onset, not at its loudest point.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

SAMPLE_RATE = 16000
HOP = 0.01  # analysis grid, seconds
_HOP_SAMPLES = int(SAMPLE_RATE * HOP)
_F0_MIN, _F0_MAX = 60.0, 420.0
_SILENCE_DB = -45.0  # below the clip's loudest frame


@dataclass
class Syllable:
    onset: float  # steepest loudness rise before the nucleus
    peak: float  # loudest point of the nucleus
    loudness: float  # dB relative to the clip's loudest frame (<= 0)
    pitch: float  # semitones relative to the clip's median f0 (0 when unvoiced)
    stress: float  # 0..1, loudness, pitch excursion and length combined


@dataclass
class Prosody:
    duration: float
    envelope_db: np.ndarray  # (T,) dB re the loudest frame, on the 100 Hz grid
    f0: np.ndarray  # (T,) Hz, 0 where unvoiced
    voiced: np.ndarray  # (T,) bool
    speaking: np.ndarray  # (T,) bool: inside a phrase
    syllables: list[Syllable]
    accents: list[Syllable]  # the pitch-accented subset of ``syllables``
    phrases: list[tuple[float, float]]  # (start, end) of stretches of speech between pauses

    def sample(self, values: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Values on the analysis grid, linearly interpolated at ``times`` (seconds)."""
        grid = np.arange(len(values)) * HOP
        return np.interp(times, grid, values)


def _frames(wave: np.ndarray, length: int) -> np.ndarray:
    pad = np.pad(wave, (length // 2, length))
    count = len(wave) // _HOP_SAMPLES + 1
    idx = np.arange(count)[:, None] * _HOP_SAMPLES + np.arange(length)[None, :]
    return pad[idx]


def loudness_envelope(wave: np.ndarray) -> np.ndarray:
    """Band-limited (250-3000 Hz, where vowels carry their energy) RMS in dB, 25 ms windows."""
    sos = signal.butter(4, [250, 3000], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    band = signal.sosfiltfilt(sos, wave)
    frames = _frames(band, int(0.025 * SAMPLE_RATE))
    rms = np.sqrt(np.mean(frames * frames, axis=1) + 1e-12)
    db = 20 * np.log10(rms + 1e-9)
    return db - db.max()


def track_f0(wave: np.ndarray, envelope_db: np.ndarray) -> np.ndarray:
    """Autocorrelation pitch tracker: 40 ms frames, normalized autocorrelation peak > 0.45 is voiced.

    The frame is low-passed to 900 Hz first so formants do not win over the fundamental, and a
    median filter removes octave jumps of single frames.
    """
    sos = signal.butter(4, 900, btype="lowpass", fs=SAMPLE_RATE, output="sos")
    low = signal.sosfiltfilt(sos, wave)
    length = int(0.04 * SAMPLE_RATE)
    frames = _frames(low, length)[: len(envelope_db)]
    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = frames * np.hanning(length)[None, :]
    spec = np.fft.rfft(frames, n=2 * length, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :length]
    # Normalize by the window's own autocorrelation so long lags are not penalized.
    win_ac = np.correlate(np.hanning(length), np.hanning(length), "full")[length - 1:]
    ac = ac / np.maximum(ac[:, :1], 1e-12) / np.maximum(win_ac / win_ac[0], 1e-3)[None, :]
    lo, hi = int(SAMPLE_RATE / _F0_MAX), int(SAMPLE_RATE / _F0_MIN)
    # The first lag whose correlation comes within 10 % of the best one: periods at twice the true
    # one correlate nearly as well, and picking them would halve f0 (octave errors).
    window = ac[:, lo:hi]
    best = window.max(axis=1, keepdims=True)
    is_peak = np.zeros_like(window, bool)
    is_peak[:, 1:-1] = (window[:, 1:-1] >= window[:, :-2]) & (window[:, 1:-1] >= window[:, 2:])
    good = is_peak & (window >= 0.9 * best)
    lag = lo + np.where(good.any(axis=1), np.argmax(good, axis=1), np.argmax(window, axis=1))
    strength = ac[np.arange(len(ac)), lag]
    voiced = (strength > 0.45) & (envelope_db > _SILENCE_DB + 10)
    # Parabolic interpolation of the peak for sub-sample lag precision.
    rows = np.arange(len(ac))
    a, b, c = ac[rows, lag - 1], ac[rows, lag], ac[rows, np.minimum(lag + 1, length - 1)]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > 1e-9, 0.5 * (a - c) / np.where(np.abs(denom) > 1e-9, denom, 1), 0.0)
    f0 = np.where(voiced, SAMPLE_RATE / (lag + np.clip(shift, -1, 1)), 0.0)
    f0 = signal.medfilt(f0, 5)
    return np.where(voiced, f0, 0.0)


def _speaking_mask(envelope_db: np.ndarray, min_pause: float = 0.22) -> np.ndarray:
    """Frames inside a phrase: loud enough, with pauses shorter than ``min_pause`` bridged."""
    loud = envelope_db > _SILENCE_DB
    mask = loud.copy()
    gap = int(round(min_pause / HOP))
    idx = np.flatnonzero(loud)
    if len(idx):
        for a, b in zip(idx[:-1], idx[1:]):
            if 1 < b - a <= gap:
                mask[a:b] = True
    return mask


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def analyze(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Prosody:
    """Analyse mono speech at 16 kHz."""
    wave = np.asarray(wave, np.float64)
    if wave.ndim != 1:
        raise ValueError(f"speech must be mono (1-D), got shape {wave.shape}")
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"speech must be {SAMPLE_RATE} Hz, got {sample_rate} Hz: resample it first")
    duration = len(wave) / SAMPLE_RATE
    if np.max(np.abs(wave), initial=0.0) < 1e-6:
        n = len(wave) // _HOP_SAMPLES + 1
        zeros = np.zeros(n)
        return Prosody(duration, zeros - 120.0, zeros, zeros > 0, zeros > 0, [], [], [])
    env = loudness_envelope(wave)
    f0 = track_f0(wave, env)
    voiced = f0 > 0
    speaking = _speaking_mask(env)

    # Syllable nuclei: peaks of the envelope smoothed to ~10 Hz syllable rate.
    smooth = signal.sosfiltfilt(signal.butter(2, 9.0, fs=1 / HOP, output="sos"), np.maximum(env, _SILENCE_DB))
    peaks, props = signal.find_peaks(smooth, prominence=2.5, distance=int(0.09 / HOP), height=_SILENCE_DB + 12)
    rise = np.gradient(smooth)
    median_f0 = np.median(f0[voiced]) if voiced.any() else 0.0
    semitones = np.where(voiced, 12 * np.log2(np.maximum(f0, 1.0) / max(median_f0, 1.0)), 0.0)

    syllables: list[Syllable] = []
    left_bases = props["left_bases"]
    for k, p in enumerate(peaks):
        previous = peaks[k - 1] + 1 if k else 0
        start = max(int(left_bases[k]), p - int(0.2 / HOP), previous)
        onset = start + int(np.argmax(rise[start: p + 1])) if p > start else p
        window = slice(max(p - 8, 0), min(p + 8, len(env)))
        voiced_pitch = semitones[window][voiced[window]]
        pitch = float(voiced_pitch.max()) if len(voiced_pitch) else 0.0
        syllables.append(Syllable(onset * HOP, p * HOP, float(smooth[p]), pitch, 0.0))

    if syllables:
        loud = np.array([s.loudness for s in syllables])
        pitch = np.array([s.pitch for s in syllables])
        score = 0.45 * _rank(loud) + 0.35 * _rank(pitch) + 0.2 * _rank(props["prominences"])
        for s, v in zip(syllables, score):
            s.stress = float(v)

    accents = _pitch_accents(syllables, semitones, voiced)
    phrases = [(a * HOP, b * HOP) for a, b in _runs(speaking) if (b - a) * HOP >= 0.15]
    return Prosody(duration, env, f0, voiced, speaking, syllables, accents, phrases)


def _rank(values: np.ndarray) -> np.ndarray:
    """Values mapped to 0..1 by rank, so different units combine fairly."""
    if len(values) < 2:
        return np.ones(len(values))
    order = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return order / (len(values) - 1)


def _pitch_accents(syllables: list[Syllable], semitones: np.ndarray, voiced: np.ndarray) -> list[Syllable]:
    """Syllables whose pitch is a local high point: above the clip's median by 1 semitone and
    above both neighbouring syllables (a rise-fall, the shape of an English H* accent)."""
    out = []
    for k, s in enumerate(syllables):
        if s.pitch < 1.0:
            continue
        prev_p = syllables[k - 1].pitch if k > 0 else -np.inf
        next_p = syllables[k + 1].pitch if k + 1 < len(syllables) else -np.inf
        if s.pitch >= prev_p and s.pitch >= next_p:
            out.append(s)
    return out


def onset_strength(wave: np.ndarray) -> tuple[np.ndarray, float]:
    """Spectral flux of a log-magnitude spectrogram (hop 512 at 16 kHz), and its frame rate.

    The same idea as librosa's onset strength, used by tests to check beat alignment without
    depending on the training code.
    """
    hop, n_fft = 512, 2048
    wave = np.asarray(wave, np.float64)
    pad = np.pad(wave, (n_fft // 2, n_fft // 2))
    count = 1 + (len(pad) - n_fft) // hop
    idx = np.arange(count)[:, None] * hop + np.arange(n_fft)[None, :]
    spec = np.abs(np.fft.rfft(pad[idx] * np.hanning(n_fft)[None, :], axis=1))
    logspec = np.log1p(100 * spec)
    flux = np.maximum(np.diff(logspec, axis=0), 0.0).sum(axis=1)
    return np.concatenate([[0.0], flux]), SAMPLE_RATE / hop


def detect_onsets(wave: np.ndarray) -> np.ndarray:
    """Onset times (seconds): peaks of the onset strength above its mean plus a margin."""
    strength, rate = onset_strength(wave)
    if strength.max() <= 0:
        return np.zeros(0)
    s = strength / strength.max()
    peaks, _ = signal.find_peaks(s, height=s.mean() + 0.07, distance=3)
    return peaks / rate
