"""Training speech as real recordings sound (``training/audio_augment.py``): each effect does what
its parameters say, on the project's own example recording where a real voice matters."""
from pathlib import Path

import numpy as np
import pytest

from gestura.inference.audio import load_audio
from gestura.inference.features import SAMPLE_RATE, audio_features

pytest.importorskip("scipy")  # a training dependency: absent from the Blender 4.2 test environment
from gestura.training import audio_augment as aa  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "speech.wav"
ONSET = 65  # onset strength's column in the features


@pytest.fixture(scope="module")
def speech():
    return load_audio(EXAMPLE)


def band_power(wave, low_hz, high_hz):
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    f = np.fft.rfftfreq(len(wave), 1 / SAMPLE_RATE)
    return spectrum[(f >= low_hz) & (f < high_hz)].sum()


def test_a_room_impulse_decays_60_db_over_its_rt60_with_the_asked_direct_to_reverb_ratio():
    impulse = aa.room_impulse(0.5, 6.0, np.random.default_rng(0)).astype(np.float64)
    assert impulse[0] == 1.0 and len(impulse) == SAMPLE_RATE // 2
    assert 10 * np.log10(1.0 / np.sum(impulse[1:] ** 2)) == pytest.approx(6.0, abs=1e-3)
    # RMS over 20 ms at 0.1 s and at 0.4 s: 60 dB per 0.5 s is 36 dB over 0.3 s.
    rms = [np.sqrt(np.mean(impulse[int(t * SAMPLE_RATE):int((t + 0.02) * SAMPLE_RATE)] ** 2)) for t in (0.1, 0.4)]
    assert 20 * np.log10(rms[0] / rms[1]) == pytest.approx(36.0, abs=3.0)
    with pytest.raises(ValueError, match="rt60_s must be positive"):
        aa.room_impulse(0.0, 6.0, np.random.default_rng(0))


def test_noise_is_added_at_the_asked_level_below_the_speech():
    # 1 s of tone (power 0.125) then 1 s of silence: the level is the tone's, the pause does not count.
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    wave = np.concatenate([0.5 * np.sin(2 * np.pi * 200 * t), np.zeros(SAMPLE_RATE)]).astype(np.float32)
    noise = aa.add_noise(wave, 20.0, np.random.default_rng(1)).astype(np.float64) - wave
    assert np.mean(noise ** 2) == pytest.approx(0.125 * 10 ** -2, rel=0.01)
    # Pink: the octave 250-500 Hz carries about as much noise power as 4-8 kHz (white would give 1/16).
    assert band_power(noise, 250, 500) / band_power(noise, 4000, 8000) == pytest.approx(1.0, rel=0.3)
    silence = np.zeros(SAMPLE_RATE, np.float32)
    np.testing.assert_array_equal(aa.add_noise(silence, 20.0, np.random.default_rng(1)), silence)


def test_a_telephone_band_leaves_nothing_above_4_khz(speech):
    phone = aa.band_limit(speech, *aa.TELEPHONE_BAND_HZ)
    assert band_power(phone, 4500, 8000) < 1e-3 * band_power(speech, 4500, 8000)
    assert band_power(phone, 500, 3000) > 0.5 * band_power(speech, 500, 3000)


def test_a_room_blurs_the_onsets_the_model_hears(speech):
    # Real recordings' onset strength spreads less than clean speech's; a room is one reason.
    room = aa.reverberate(speech, aa.room_impulse(0.8, 0.0, np.random.default_rng(2)))
    assert audio_features(room)[:, ONSET].std() < 0.8 * audio_features(speech)[:, ONSET].std()


def test_augment_keeps_length_and_range_and_repeats_with_the_same_generator(speech):
    takes = [aa.augment(speech, np.random.default_rng(seed)) for seed in (3, 3, 4)]
    for take in takes:
        assert take.dtype == np.float32 and take.shape == speech.shape
        assert np.abs(take).max() <= 1.0
    np.testing.assert_array_equal(takes[0], takes[1])
    assert not np.array_equal(takes[0], takes[2])
    assert not np.array_equal(takes[0], speech)
