"""Audio loading: real espeak-ng speech and files in other formats the test writes; bad input."""
import warnings

import numpy as np
import pytest
soundfile = pytest.importorskip("soundfile")

from gestura.inference import audio as audio_module
from gestura.inference.audio import AudioError, SilentAudioWarning, load_audio, resample, resample_numpy


@pytest.fixture(scope="module")
def speech(speech_wav):
    data, rate = soundfile.read(str(speech_wav), dtype="float32")
    return data, rate


def _corr(a, b):
    n = min(len(a), len(b))
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def test_espeak_speech_loads_as_mono_16k(speech_wav, speech):
    data, rate = speech
    assert rate != 16000  # espeak-ng writes 22.05 kHz: the loader must resample
    wave = load_audio(speech_wav)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - len(data) * 16000 / rate) <= 1
    assert np.isfinite(wave).all() and 0.05 < np.abs(wave).max() <= 1.5


@pytest.mark.parametrize("fmt,subtype,channels,rate,min_corr", [
    ("FLAC", "PCM_16", 1, None, 0.999),
    ("OGG", "VORBIS", 1, None, 0.9),
    ("WAV", "PCM_16", 2, None, 0.999),
    ("WAV", "PCM_U8", 1, None, 0.99),
    ("WAV", "PCM_24", 1, 44100, 0.999),
    ("WAV", "FLOAT", 2, 8000, 0.95),
])
def test_other_formats_rates_and_channels(tmp_path, speech_wav, speech, fmt, subtype, channels, rate, min_corr):
    data, source_rate = speech
    reference = load_audio(speech_wav)
    if rate is not None:
        data = resample(data, source_rate, rate)
    rate = rate or source_rate
    if channels == 2:  # voice in both channels, the right one quieter
        data = np.stack([data, 0.5 * data], axis=1)
    path = tmp_path / f"speech.{fmt.lower()}"
    soundfile.write(str(path), data, rate, format=fmt, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - len(reference)) <= 2
    limit = 0.9 if rate == 8000 else min_corr  # 8 kHz loses everything above 4 kHz
    assert _corr(wave, reference) > limit


def test_missing_unreadable_empty_and_nan_files_fail_clearly(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(tmp_path / "nothing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_text("this is not audio")
    with pytest.raises(AudioError, match="cannot be decoded"):
        load_audio(junk)
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="no samples"):
        load_audio(empty)
    bad = tmp_path / "nan.wav"
    soundfile.write(str(bad), np.array([0.0, np.nan, 0.1], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(bad)


def test_silent_audio_warns_but_loads(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(str(path), np.zeros(16000, np.float32), 16000)
    with pytest.warns(SilentAudioWarning, match="silent"):
        wave = load_audio(path)
    assert len(wave) == 16000


def test_loud_audio_does_not_warn(speech_wav):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_audio(speech_wav)


def test_numpy_resampler_matches_scipy(speech):
    data, rate = speech
    a = resample(data, rate, 16000)
    b = resample_numpy(data, rate, 16000)
    assert len(a) == len(b)
    assert _corr(a, b) > 0.999
    # A 1 kHz tone survives both exactly enough.
    t = np.arange(44100) / 44100
    tone = resample_numpy(np.sin(2 * np.pi * 1000 * t).astype(np.float32), 44100, 16000)
    expected = np.sin(2 * np.pi * 1000 * np.arange(len(tone)) / 16000)
    assert np.abs(tone - expected)[100:-100].max() < 1e-3


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32"])
def test_standard_library_wav_reader_matches_soundfile(tmp_path, speech, subtype):
    """The fallback used where neither soundfile nor Blender's aud exists."""
    data, rate = speech
    path = tmp_path / "x.wav"
    soundfile.write(str(path), np.stack([data, -data], 1), rate, subtype=subtype)
    mine, mine_rate = audio_module._decode_wave(str(path))
    theirs, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    assert mine_rate == rate and mine.shape == theirs.shape
    assert np.abs(mine - theirs).max() < 1e-6


def test_loader_without_soundfile_uses_the_fallback(tmp_path, speech_wav, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_soundfile(name, *args, **kwargs):
        if name == "soundfile":
            raise ImportError("soundfile hidden by the test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_soundfile)
    wave = load_audio(speech_wav)
    monkeypatch.undo()
    assert _corr(wave, load_audio(speech_wav)) > 0.999


def test_arrays_are_checked_too():
    with pytest.raises(AudioError, match="NaN"):
        audio_module.prepare_waveform(np.array([0.0, np.inf], np.float32), 16000)
    with pytest.raises(AudioError, match="no samples"):
        audio_module.prepare_waveform(np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="mono"):
        audio_module.prepare_waveform(np.zeros((2, 2, 2), np.float32), 16000)
