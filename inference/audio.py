"""Load speech audio as mono 16 kHz float32, from any common file or from an array.

Decoding: soundfile (libsndfile: wav, flac, ogg/vorbis, aiff, ...) when it imports; without it
(inside a stock Blender) Blender's ``aud`` module (``audio_blender``), and as a last resort the
standard library's ``wave`` for PCM wav. Resampling: scipy's polyphase filter when scipy imports,
otherwise the windowed-sinc resampler below (numpy only), so the same call works in Blender.
"""
from __future__ import annotations

import math
import os
import wave as wave_module

import numpy as np

from .errors import AudioError, UndecodableAudioError
from .notices import notify

SAMPLE_RATE = 16000
SILENCE_LEVEL = 1e-4  # peak amplitude below which a clip counts as silent (-80 dBFS)

# Down-mix rule (``mix_to_mono``); levels are RMS over the whole clip.
DEAD_CHANNEL = 0.01  # a channel 40 dB below the loudest one carries nothing
CANCEL_RATIO = 0.25  # the mean 12 dB below the channels' level: they cancel (opposite phase)
# Modulation depth: dB between the 90th and 10th percentile of 25 ms frame levels, capped at 40.
# Speech (syllables and pauses) has 25-40 dB, steady noise or hum under 6 dB.
MODULATION_CAP_DB = 40.0
MIX_SPEECH_DB = 12.0  # a mix shallower than this has lost the pauses of speech ...
MIX_LOSS_DB = 10.0  # ... when one channel alone is at least this much deeper


# What each decoder reads. soundfile (libsndfile 1.1+, the command line) reads wav, flac,
# ogg/oga/opus, mp3, aiff, au, caf, w64; Blender's aud (ffmpeg; the panel and blender_batch.py)
# reads bpy.path.extensions_audio; the standard library's wave reads PCM wav only.
SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".caf", ".w64")
BLENDER_AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aac", ".m4a",
                            ".ac3", ".eac3", ".mp2", ".mka", ".wma")


class SilentAudioWarning(UserWarning):
    """The audio is silent: the motion follows no speech."""


class ShortAudioWarning(UserWarning):
    """The audio is shorter than a syllable (``SHORT_AUDIO_S``): a motion of a few frames."""


# Under a syllable's length there is nothing to gesture to (a stroke takes about half a second).
SHORT_AUDIO_S = 0.25


class TruncatedAudioWarning(UserWarning):
    """The file ends before the length its header declares; what is there is used."""


class DownmixWarning(UserWarning):
    """Mixing the channels would have lost the speech, so fewer channels were used."""


def load_audio(path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode ``path`` to a mono float32 waveform at ``sample_rate`` (16 kHz for the model)."""
    path = os.fspath(path)
    check_audio_path(path)
    samples, rate = _decode(path)
    return prepare_waveform(samples, rate, source=f"Audio file '{path}'", sample_rate=sample_rate)


def check_audio_path(path) -> None:
    """Raise ``AudioError`` unless ``path`` is a non-empty file (a folder, a missing or a 0-byte file)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise AudioError(f"'{path}' is a folder, not an audio file: choose a speech recording inside it")
    if not os.path.isfile(path):
        raise AudioError(f"Audio file '{path}' does not exist: check the path")
    if os.path.getsize(path) == 0:
        raise AudioError(f"Audio file '{path}' is empty (0 bytes): choose a recording with sound in it")


def prepare_waveform(samples, rate: int, source: str = "The audio", sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Check decoded samples ((n,) or (n, channels)), mix to mono and resample."""
    samples = np.asarray(samples)
    if samples.dtype.kind not in "fiu":
        raise AudioError(f"{source} has samples of type {samples.dtype}: expected numbers")
    if samples.ndim not in (1, 2):
        raise AudioError(f"{source} must be 1-D (mono) or 2-D (samples, channels), got shape {samples.shape}")
    samples = samples.astype(np.float32, copy=False)
    if samples.size == 0:
        raise AudioError(f"{source} is empty (no samples): choose a recording with sound in it")
    if not np.isfinite(samples).all():
        raise AudioError(f"{source} contains NaN or infinite samples: re-export it")
    if not (isinstance(rate, (int, np.integer)) or float(rate).is_integer()) or int(rate) <= 0:
        raise AudioError(f"{source} has an invalid sample rate {rate!r}")
    if samples.ndim == 2:
        samples, note = mix_to_mono(samples, int(rate))
        if note:
            notify(f"{source} {note}", DownmixWarning, key="downmix", stacklevel=3)
    out = resample(samples, int(rate), sample_rate)
    if out.size == 0:
        raise AudioError(f"{source} is shorter than one sample at {sample_rate} Hz: choose a longer recording")
    if out.size < SHORT_AUDIO_S * sample_rate:
        notify(f"{source} is only {out.size / sample_rate:.2f} s long: the motion will be a few frames with no "
               f"gesture; choose a recording of a word or more", ShortAudioWarning, key="short", stacklevel=3)
    if float(np.max(np.abs(out))) < SILENCE_LEVEL:
        notify(f"{source} is silent (peak below -80 dBFS): the motion will not follow any speech",
               SilentAudioWarning, key="silent", stacklevel=3)
    return out


def mix_to_mono(samples: np.ndarray, rate: int) -> tuple[np.ndarray, str | None]:
    """Mix ``(n, channels)`` samples to ``(n,)`` float32 so that speech survives, and say how.

    The mean of the channels, unless it would lose the speech; then, in this order:
    - channels 40 dB below the loudest (``DEAD_CHANNEL``) are left out;
    - if the mean of the rest is 12 dB below their level (``CANCEL_RATIO``: opposite phase), or
      the mean's modulation depth is under ``MIX_SPEECH_DB`` while one channel's is at least
      ``MIX_LOSS_DB`` deeper (a channel of steady noise fills speech's pauses), the most
      speech-like channel alone is used: the deepest modulation, then the loudest, then the first
      (differences under 1 dB do not count).
    Returns the mono samples and None, or a clause for the user (it follows the audio's name)
    saying what was done. Numpy only: it runs inside Blender too.
    """
    samples = np.asarray(samples, np.float32)
    if samples.ndim == 1:
        return samples, None
    count = samples.shape[1]
    if count == 1:
        return np.ascontiguousarray(samples[:, 0]), None
    level = np.sqrt(np.mean(np.square(samples, dtype=np.float64), axis=0))
    live = [c for c in range(count) if level[c] >= DEAD_CHANNEL * level.max()] if level.max() > 0 else []
    if not live:  # all silent: the silence check says so
        return samples.mean(axis=1, dtype=np.float32), None
    dead = [c for c in range(count) if c not in live]
    mix = samples[:, live].mean(axis=1, dtype=np.float32)
    depth = [_modulation_db(samples[:, c], rate) for c in range(count)]
    # Within 1 dB counts as equal (a channel and its negation differ by rounding): then the first.
    deep = [c for c in live if depth[c] >= max(depth[c] for c in live) - 1.0]
    best = next(c for c in deep if level[c] >= max(level[deep]) * 10 ** (-1.0 / 20))
    names = _channel_names(count)
    using = f"using {names[best]} only"
    if len(live) > 1:
        mixed_level = float(np.sqrt(np.mean(np.square(mix, dtype=np.float64))))
        if mixed_level < CANCEL_RATIO * float(np.mean(level[live])):
            channels = "its channels" if count > 2 else "its left and right channels"
            return (np.ascontiguousarray(samples[:, best]),
                    f"has {channels} in opposite phase, so they cancel when mixed: {using}")
        mixed_depth = _modulation_db(mix, rate)
        if mixed_depth < MIX_SPEECH_DB and depth[best] >= mixed_depth + MIX_LOSS_DB:
            noisy = _join([names[c] for c in live if c != best])
            return (np.ascontiguousarray(samples[:, best]),
                    f"has steady noise on {noisy} that would drown the speech when mixed: {using}")
    if not dead:
        return mix, None
    silent = _join([names[c] for c in dead])
    if len(live) == 1:
        return mix, f"is silent on {silent}: {using}"
    return mix, f"is silent on {silent}: mixing the other channels"


def _modulation_db(x: np.ndarray, rate: int) -> float:
    """dB between the 90th and 10th percentile of 25 ms frame RMS levels, at most MODULATION_CAP_DB."""
    frame = max(1, int(rate) // 40)
    frames = len(x) // frame
    if frames < 10:  # too short to tell speech from noise: count it as speech
        return MODULATION_CAP_DB
    energy = np.sqrt(np.mean(np.square(x[:frames * frame].reshape(frames, frame), dtype=np.float64), axis=1))
    high, low = np.percentile(energy, 90), np.percentile(energy, 10)
    if high <= 0:
        return 0.0
    return float(20.0 * np.log10(high / max(low, high * 10 ** (-MODULATION_CAP_DB / 20))))


def _channel_names(count: int) -> list[str]:
    return ["the left channel", "the right channel"] if count == 2 else [f"channel {i + 1}" for i in range(count)]


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _soundfile():
    try:
        import soundfile
    except (ImportError, OSError):  # OSError: the wheel is there but libsndfile is not
        return None
    return soundfile


def readable_extensions() -> tuple[str, ...]:
    """File extensions this Python decodes: soundfile's, plus Blender's where ``aud`` imports
    (inside Blender or a bpy process); ``.wav`` alone where neither does."""
    from .audio_blender import aud_available

    found = SOUNDFILE_EXTENSIONS if _soundfile() is not None else ()
    if aud_available():
        found += BLENDER_AUDIO_EXTENSIONS
    return tuple(dict.fromkeys(found)) or (".wav",)


def _decode(path: str) -> tuple[np.ndarray, int]:
    """soundfile, then Blender's aud (where it imports) for what soundfile does not recognise
    (aac, m4a, ...), then, with neither, the standard library's wave."""
    from .audio_blender import aud_available, decode_with_aud

    soundfile = _soundfile()
    if soundfile is not None:
        try:
            data, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except Exception as error:  # soundfile.LibsndfileError and friends
            reason = _reason(error)
        else:
            return data, int(rate)
    if aud_available():
        try:
            # audaspace's own high-quality resampler: faster than the numpy fallback here.
            return decode_with_aud(path, rate=SAMPLE_RATE)
        except UndecodableAudioError:
            if soundfile is None:
                raise
    if soundfile is None:
        return _decode_wave(path)
    readable = readable_extensions()
    if os.path.splitext(str(path))[1].lower() in readable:  # the name promises audio the decoders know
        hint = f"it is not audio or is damaged; check it, or convert it with ffmpeg to one of {', '.join(readable)}"
    else:
        hint = f"use one of {', '.join(readable)}, or convert it with ffmpeg"
    raise AudioError(f"Audio file '{path}' cannot be decoded ({reason}): {hint}")


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
    if channels < 1 or width < 1:
        raise AudioError(f"Audio file '{path}' cannot be decoded: its header declares {channels} channels of "
                         f"{8 * width}-bit samples; re-export it as 16-bit PCM wav")
    frames = len(raw) // (channels * width)
    if frames < count:
        # A file cut short (an interrupted copy or recording): keep the whole frames it holds, as
        # soundfile and Blender's aud do, and say so.
        seconds = frames / max(rate, 1), count / max(rate, 1)
        notify(f"Audio file '{path}' is truncated ({seconds[0]:.2f} s of the {seconds[1]:.2f} s its header "
               "declares): using the part that is there", TruncatedAudioWarning, key="truncated", stacklevel=4)
        raw = raw[:frames * channels * width]
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
