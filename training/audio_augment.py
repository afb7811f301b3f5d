"""Speech as real recordings sound: room, channel, noise and level variation for training audio.

The bundled corpus is espeak-ng speech written straight to a file: no room, no microphone, no
background, one level. Real recordings differ in exactly those ways (``../shared/real-speech``:
reverberant halls, 8 kHz telephone prompts, meeting rooms), and their features show it: the
frame-to-frame change of the log-mel bands spreads 0.4-0.85 times as much as the corpus' does
there, against 0.9-1.0 for the corpus' own clips. ``augment`` draws one recording condition per
call, as speech-recognition training does (room impulse responses and additive noise: Ko et al.,
"A study on data augmentation of reverberant speech for robust speech recognition", ICASSP 2017),
with scipy's filters and convolution. What it changed in the bundled model's stage 2 is measured
in ``weights/MODEL_CARD.md`` ("On real recordings").

Every function takes and returns a mono float32 waveform at 16 kHz of the same length, and draws
only from the ``numpy.random.Generator`` it is given (same generator state, same result).
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from ..inference.features import SAMPLE_RATE

RT60_RANGE_S = (0.2, 0.9)  # small office to hall
DIRECT_TO_REVERB_DB = (-3.0, 12.0)
SNR_RANGE_DB = (8.0, 35.0)
GAIN_RANGE_DB = (-12.0, 6.0)
TELEPHONE_BAND_HZ = (300.0, 3400.0)
LOWPASS_RANGE_HZ = (3800.0, 7000.0)
# How often each effect is drawn: about one clip in six stays dry, noiseless and full-band.
P_REVERB, P_NOISE, P_TELEPHONE, P_LOWPASS = 0.6, 0.5, 0.15, 0.25


def room_impulse(rt60_s: float, direct_to_reverb_db: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response (n,) float32: a unit direct path, then Gaussian noise whose
    amplitude decays by 60 dB over ``rt60_s`` seconds, scaled so that the direct path carries
    ``direct_to_reverb_db`` dB more energy than the tail. ValueError for rt60_s <= 0."""
    if rt60_s <= 0:
        raise ValueError(f"rt60_s must be positive, got {rt60_s}")
    n = max(2, int(rt60_s * SAMPLE_RATE))
    t = np.arange(1, n) / SAMPLE_RATE
    tail = rng.standard_normal(n - 1) * np.exp(-3.0 * np.log(10.0) * t / rt60_s)  # 60 dB = 10^-3 in amplitude
    tail *= np.sqrt(10.0 ** (-direct_to_reverb_db / 10.0) / np.sum(tail ** 2))
    return np.concatenate([[1.0], tail]).astype(np.float32)


def reverberate(wave: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """``wave`` (n,) convolved with ``impulse``, cut to n samples (the tail past the end is dropped)."""
    return signal.fftconvolve(wave, impulse)[: len(wave)].astype(np.float32)


def band_limit(wave: np.ndarray, low_hz: float | None, high_hz: float) -> np.ndarray:
    """An 8th-order Butterworth band-pass (``low_hz`` to ``high_hz``) or low-pass (``low_hz`` None)."""
    if low_hz is None:
        sos = signal.butter(8, high_hz, btype="lowpass", fs=SAMPLE_RATE, output="sos")
    else:
        sos = signal.butter(8, (low_hz, high_hz), btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return signal.sosfilt(sos, wave).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) float32 noise with power falling as 1/f (room and fan noise more than white hiss), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    spectrum[1:] /= np.sqrt(f[1:] / f[1])
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n)
    return (noise / max(np.sqrt(np.mean(noise ** 2)), 1e-12)).astype(np.float32)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``wave`` plus pink noise ``snr_db`` below the speech's level (the RMS of its louder half of
    25 ms frames, so that pauses do not count as speech). A silent wave comes back unchanged."""
    frame = SAMPLE_RATE // 40
    frames = wave[: len(wave) // frame * frame].reshape(-1, frame)
    if not len(frames):
        return wave.astype(np.float32)
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    speech = np.sort(power)[len(power) // 2:]
    level = np.sqrt(np.mean(speech))
    if level <= 0:
        return wave.astype(np.float32)
    return (wave + pink_noise(len(wave), rng) * level * 10.0 ** (-snr_db / 20.0)).astype(np.float32)


def augment(wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random recording condition applied to ``wave`` (n,) at 16 kHz -> (n,) float32: a room
    (probability ``P_REVERB``), a telephone band or a low-pass microphone, pink noise at
    ``SNR_RANGE_DB``, and a level change in ``GAIN_RANGE_DB``, clipped to [-1, 1] as a file would be."""
    x = np.asarray(wave, np.float32)
    if rng.random() < P_REVERB:
        x = reverberate(x, room_impulse(rng.uniform(*RT60_RANGE_S), rng.uniform(*DIRECT_TO_REVERB_DB), rng))
    channel = rng.random()
    if channel < P_TELEPHONE:
        x = band_limit(x, *TELEPHONE_BAND_HZ)
    elif channel < P_TELEPHONE + P_LOWPASS:
        x = band_limit(x, None, rng.uniform(*LOWPASS_RANGE_HZ))
    if rng.random() < P_NOISE:
        x = add_noise(x, rng.uniform(*SNR_RANGE_DB), rng)
    x = x * np.float32(10.0 ** (rng.uniform(*GAIN_RANGE_DB) / 20.0))
    return np.clip(x, -1.0, 1.0).astype(np.float32)
