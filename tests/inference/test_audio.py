"""Audio loading: real espeak-ng speech and files in other formats the test writes; bad input."""
import re
import warnings

import numpy as np
import pytest
soundfile = pytest.importorskip("soundfile")

from gestura.inference import audio as audio_module
from gestura.inference import notices
from gestura.inference.audio import (AudioError, DownmixWarning, ShortAudioWarning, SilentAudioWarning,
                                     TruncatedAudioWarning, load_audio,
                                     mix_to_mono, resample, resample_numpy)


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
    with pytest.raises(AudioError, match=r"empty.wav' is empty \(no samples\)"):
        load_audio(empty)
    bad = tmp_path / "nan.wav"
    soundfile.write(str(bad), np.array([0.0, np.nan, 0.1], np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(bad)


def test_silent_audio_warns_but_loads(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(str(path), np.zeros(16000, np.float32), 16000)
    with pytest.warns(SilentAudioWarning) as caught:
        wave = load_audio(path)
    assert len(wave) == 16000
    # True: the motion is not promised to be idle (the model still moves), only speech-free.
    assert [str(w.message) for w in caught] == [
        f"Audio file '{path}' is silent (peak below -80 dBFS): the motion will not follow any speech"]


def test_audio_shorter_than_a_syllable_warns_but_loads(tmp_path):
    # A reported fault: 100 samples (6 ms) made a 1-frame motion without a word.
    path = tmp_path / "tick.wav"
    soundfile.write(str(path), np.full(100, 0.3, np.float32), 16000)
    with pytest.warns(ShortAudioWarning) as caught:
        wave = load_audio(path)
    assert len(wave) == 100
    assert [str(w.message) for w in caught] == [
        f"Audio file '{path}' is only 0.01 s long: the motion will be a few frames with no gesture; choose a "
        f"recording of a word or more"]
    with warnings.catch_warnings():  # a quarter of a second is long enough
        warnings.simplefilter("error")
        assert len(audio_module.prepare_waveform(np.full(4000, 0.3, np.float32), 16000)) == 4000


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
    with pytest.raises(AudioError, match="is empty"):
        audio_module.prepare_waveform(np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="mono"):
        audio_module.prepare_waveform(np.zeros((2, 2, 2), np.float32), 16000)


def _hide_soundfile(monkeypatch):
    """Only the standard library's wave reader is left (Blender's ``aud`` too is hidden, when a
    Blender test of the same session has imported bpy)."""
    import builtins

    real_import = builtins.__import__

    def no_soundfile(name, *args, **kwargs):
        if name in ("soundfile", "aud"):
            raise ImportError(f"{name} hidden by the test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_soundfile)


@pytest.fixture
def voice(speech):
    """The espeak-ng speech peaking at 0.9, as in the report."""
    data, rate = speech
    return (0.9 * data / np.abs(data).max()).astype(np.float32), rate


def test_out_of_phase_stereo_is_not_mixed_to_silence(tmp_path, voice):
    # Speech in L and -speech in R: the mean has peak 1.5e-5 (a "silent" warning, a still jaw).
    data, rate = voice
    mono, stereo = tmp_path / "mono.wav", tmp_path / "stereo.wav"
    soundfile.write(str(mono), data, rate, subtype="PCM_16")
    soundfile.write(str(stereo), np.stack([data, -data], 1), rate, subtype="PCM_16")
    with notices.collect() as found:
        wave = load_audio(stereo)
    assert found == [f"Audio file '{stereo}' has its left and right channels in opposite phase, so they cancel "
                     "when mixed: using the left channel only"]
    np.testing.assert_array_equal(wave, load_audio(mono))


@pytest.mark.parametrize("case,expected", [
    ("dead right", "is silent on the right channel: using the left channel only"),
    ("dead left", "is silent on the left channel: using the right channel only"),
    ("noise right", "has steady noise on the right channel that would drown the speech when mixed: "
                    "using the left channel only"),
    ("noise left", "has steady noise on the left channel that would drown the speech when mixed: "
                   "using the right channel only"),
])
def test_a_dead_or_noise_channel_is_left_out_and_said(voice, case, expected):
    data, rate = voice
    other = {"dead": np.zeros_like(data),
             "noise": np.random.default_rng(0).normal(0, 0.2, data.size).astype(np.float32)}[case.split()[0]]
    channels = np.stack([data, other] if case.endswith("right") else [other, data], axis=1)
    with pytest.warns(DownmixWarning) as caught:
        wave = audio_module.prepare_waveform(channels, rate, source="X")
    assert [str(w.message) for w in caught] == [f"X {expected}"]
    np.testing.assert_array_equal(wave, audio_module.prepare_waveform(data, rate))


def test_ordinary_stereo_is_still_the_mean_and_nothing_is_said(voice):
    data, rate = voice
    rng = np.random.default_rng(1)
    cases = [
        np.stack([data, 0.5 * data], 1),  # a voice panned off centre
        np.stack([data, np.roll(data, 200)], 1),  # two microphones 9 ms apart
        np.stack([data, rng.normal(0, 0.005, data.size)], 1),  # faint hiss on one channel
        np.stack([data, data, 0.7 * data, data, data, 0.5 * data], 1),  # 5.1
    ]
    for channels in cases:
        mono, note = mix_to_mono(channels.astype(np.float32), rate)
        assert note is None
        np.testing.assert_allclose(mono, channels.mean(axis=1), atol=1e-7)
    mono, note = mix_to_mono(np.stack([data, data, 0 * data, data], 1), rate)
    assert note == "is silent on channel 3: mixing the other channels"
    np.testing.assert_allclose(mono, data, atol=1e-6)  # the mean of three equal channels


def test_the_standard_library_path_mixes_the_same_way(tmp_path, voice, monkeypatch):
    data, rate = voice
    stereo = tmp_path / "stereo.wav"
    soundfile.write(str(stereo), np.stack([data, -data], 1), rate, subtype="PCM_16")
    with notices.collect():
        expected = load_audio(stereo)
    _hide_soundfile(monkeypatch)
    with notices.collect() as found:
        wave = load_audio(stereo)
    monkeypatch.undo()
    assert len(found) == 1 and "opposite phase" in found[0]
    assert _corr(wave, expected) > 0.999


def test_empty_folder_and_truncated_files_are_named_as_such(tmp_path, voice, monkeypatch):
    data, rate = voice
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    header_only = tmp_path / "header.wav"
    import wave

    with wave.open(str(header_only), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
    whole = tmp_path / "whole.wav"
    soundfile.write(str(whole), data, rate, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    raw = whole.read_bytes()
    cut.write_bytes(raw[:(len(raw) // 2) | 1])  # ends inside a sample, like an interrupted copy
    for without_soundfile in (False, True):
        if without_soundfile:
            _hide_soundfile(monkeypatch)
        with pytest.raises(AudioError, match=r"zero.wav' is empty \(0 bytes\)"):
            load_audio(zero_bytes)
        with pytest.raises(AudioError, match=r"header.wav' is empty \(no samples\)"):
            load_audio(header_only)
        with pytest.raises(AudioError, match=f"'{tmp_path}' is a folder, not an audio file"):
            load_audio(tmp_path)
        if without_soundfile:
            kept = (len(raw) // 2 - 44) // 2  # whole 16-bit frames after the 44-byte header
            declared = f"{kept / rate:.2f} s of the {len(data) / rate:.2f} s its header declares"
            with pytest.warns(TruncatedAudioWarning, match=re.escape(f"cut.wav' is truncated ({declared})")):
                wave = load_audio(cut)
            # The part that is there, exactly as soundfile (and Blender's aud) decode it.
            assert len(wave) == len(reference)
        else:
            reference = load_audio(cut)
    monkeypatch.undo()


def test_notices_go_to_the_collectors_of_their_thread_once_per_kind():
    import threading

    with notices.collect() as outer:
        with notices.collect() as inner:
            notices.notify("first", key="k")
            notices.notify("second", key="k")  # the same news: said once
            notices.notify("other")
        seen = []
        thread = threading.Thread(target=lambda: seen.append(_collect_in_thread()))
        thread.start()
        thread.join()
    assert inner == outer == ["first", "other"]
    assert seen == [["from the thread"]]
    with pytest.warns(UserWarning, match="nobody collects"):
        notices.notify("nobody collects")


def _collect_in_thread():
    with notices.collect() as found:
        notices.notify("from the thread")
    return list(found)
