"""Load speech audio as mono 16 kHz float32, from any common file or from an array.

Decoding: soundfile (libsndfile: wav, flac, ogg/vorbis, aiff, ...) when it imports; without it
(inside a stock Blender) Blender's ``aud`` module (``audio_blender``), and as a last resort the
standard library's ``wave`` for PCM wav. Resampling: scipy's polyphase filter when scipy imports,
otherwise the windowed-sinc resampler below (numpy only), so the same call works in Blender.
"""
from __future__ import annotations

import math
import os
import warnings
import wave as wave_module

import numpy as np

SAMPLE_RATE = 16000
SILENCE_LEVEL = 1e-4  # peak amplitude below which a clip counts as silent


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file, the problem and the fix."""


class SilentAudioWarning(UserWarning):
    """The audio is silent: the model still produces (idle) motion for it."""


def load_audio(path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode ``path`` to a mono float32 waveform at ``sample_rate`` (16 kHz for the model)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioError(f"Audio file '{path}' does not exist: check the path")
    samples, rate = _decode(path)
    return prepare_waveform(samples, rate, source=f"Audio file '{path}'", sample_rate=sample_rate)


def prepare_waveform(samples, rate: int, source: str = "The audio", sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Check decoded samples ((n,) or (n, channels)), mix to mono and resample."""
    samples = np.asarray(samples)
    if samples.dtype.kind not in "fiu":
        raise AudioError(f"{source} has samples of type {samples.dtype}: expected numbers")
    if samples.ndim == 2:
        samples = samples.astype(np.float32).mean(axis=1)
    elif samples.ndim != 1:
        raise AudioError(f"{source} must be 1-D (mono) or 2-D (samples, channels), got shape {samples.shape}")
    samples = samples.astype(np.float32, copy=False)
    if samples.size == 0:
        raise AudioError(f"{source} contains no samples: choose a recording with sound in it")
    if not np.isfinite(samples).all():
        raise AudioError(f"{source} contains NaN or infinite samples: re-export it")
    if not (isinstance(rate, (int, np.integer)) or float(rate).is_integer()) or int(rate) <= 0:
        raise AudioError(f"{source} has an invalid sample rate {rate!r}")
    out = resample(samples, int(rate), sample_rate)
    if out.size == 0:
        raise AudioError(f"{source} is shorter than one sample at {sample_rate} Hz: choose a longer recording")
    if float(np.max(np.abs(out))) < SILENCE_LEVEL:
        warnings.warn(f"{source} is silent: the generated motion will be idle", SilentAudioWarning, stacklevel=3)
    return out


def _decode(path: str) -> tuple[np.ndarray, int]:
    try:
        import soundfile
    except (ImportError, OSError):  # OSError: the wheel is there but libsndfile is not
        soundfile = None
    if soundfile is not None:
        try:
            data, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except Exception as error:  # soundfile.LibsndfileError and friends
            raise AudioError(f"Audio file '{path}' cannot be decoded ({_reason(error)}): "
                             "use wav, flac or ogg, or convert it with ffmpeg") from None
        return data, int(rate)
    from .audio_blender import aud_available, decode_with_aud

    if aud_available():
        # audaspace's own high-quality resampler: faster than the numpy fallback here.
        return decode_with_aud(path, rate=SAMPLE_RATE)
    return _decode_wave(path)


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[-1] if text else type(error).__name__


def _decode_wave(path: str) -> tuple[np.ndarray, int]:
    """PCM wav with the standard library (no soundfile, no aud)."""
    try:
        with wave_module.open(path, "rb") as f:
            channels, width, rate, count = f.getnchannels(), f.getsampwidth(), f.getframerate(), f.getnframes()
            raw = f.readframes(count)
    except (wave_module.Error, EOFError) as error:
        raise AudioError(f"Audio file '{path}' cannot be decoded without soundfile ({error}): "
                         "install soundfile, or convert it to 16-bit PCM wav") from None
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        data = (np.where(value >= 1 << 23, value - (1 << 24), value)).astype(np.float32) / float(1 << 23)
    elif width == 4:
        data = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
    else:
        raise AudioError(f"Audio file '{path}' has {8 * width}-bit samples: convert it to 16-bit PCM wav")
    return data.reshape(-1, channels), rate


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling; output length ``ceil(n * rate_out / rate_in)``."""
    samples = np.asarray(samples, np.float32)
    if rate_in == rate_out:
        return samples
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    try:
        from scipy.signal import resample_poly
    except ImportError:
        return resample_numpy(samples, rate_in, rate_out)
    return resample_poly(samples.astype(np.float64), up, down).astype(np.float32)


def resample_numpy(samples: np.ndarray, rate_in: int, rate_out: int, zero_crossings: int = 16,
                   block: int = 8192) -> np.ndarray:
    """Windowed-sinc (Kaiser, beta 8.6) resampling in numpy: the fallback where scipy is missing."""
    samples = np.asarray(samples, np.float64)
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    n_out = -(-len(samples) * up // down)
    # Low-pass at 95 % of the lower Nyquist frequency, in units of input samples.
    cutoff = 0.95 * min(1.0, rate_out / rate_in)
    half = int(math.ceil(zero_crossings / cutoff))
    taps = np.arange(-half + 1, half + 1)
    padded = np.concatenate([np.zeros(half), samples, np.zeros(half + 1)])

    def weights(frac: np.ndarray) -> np.ndarray:
        distance = taps[None, :] - frac[:, None]
        window = np.i0(8.6 * np.sqrt(np.clip(1.0 - (distance / half) ** 2, 0.0, None))) / np.i0(8.6)
        return cutoff * np.sinc(cutoff * distance) * window

    # Output m sits at input position m * down / up: its phase (m * down) % up picks the filter.
    table = weights(np.arange(up) / up) if up <= 4096 else None
    out = np.empty(n_out, np.float64)
    for start in range(0, n_out, block):
        m = np.arange(start, min(start + block, n_out), dtype=np.int64)
        base = (m * down) // up
        phase = (m * down) % up
        w = table[phase] if table is not None else weights(phase / up)
        out[start:start + len(m)] = np.sum(w * padded[base[:, None] + taps[None, :] + half], axis=1)
    return out.astype(np.float32)
