"""Speech features: exact 30 fps alignment (no drift over an hour), streaming == whole clip."""
import numpy as np
import pytest

from gestura.inference.features import (
    BLOCK, FEATURE_DIM, FEATURE_NAMES, N_MELS, PITCH_NAMES, SAMPLE_RATE, FeatureStream, audio_features, frame_center,
    normalize, num_frames, pitch_features,
)

ENERGY = FEATURE_NAMES.index("energy")
ONSET = FEATURE_NAMES.index("onset")
VOICING, PITCH = (FEATURE_DIM + PITCH_NAMES.index(name) for name in ("voicing", "pitch"))


def test_num_frames_counts_frame_centres_inside_the_clip():
    assert num_frames(0) == 0
    assert num_frames(1) == 1
    assert num_frames(SAMPLE_RATE) == 30
    assert num_frames(534) == 2  # frame 1 is centred at 533.3 samples
    assert num_frames(533) == 1
    assert num_frames(SAMPLE_RATE * 3600) == 108000


def test_frame_centres_never_drift_over_an_hour():
    i = np.arange(108001)
    exact = i * SAMPLE_RATE / 30
    assert np.abs(frame_center(i) - exact).max() <= 0.5
    assert frame_center(108000) == 3600 * SAMPLE_RATE  # an hour ends exactly on a frame


def test_shape_dtype_and_silence_are_finite():
    f = audio_features(np.zeros(SAMPLE_RATE, np.float32))
    assert f.shape == (30, FEATURE_DIM) and f.dtype == np.float32 and np.isfinite(f).all()
    assert len(FEATURE_NAMES) == FEATURE_DIM


def test_a_tone_lights_the_band_that_contains_it():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    low = audio_features(0.5 * np.sin(2 * np.pi * 300 * t).astype(np.float32))
    high = audio_features(0.5 * np.sin(2 * np.pi * 3000 * t).astype(np.float32))
    assert np.argmax(low[15, :N_MELS]) < np.argmax(high[15, :N_MELS])
    assert low[15, ENERGY] > audio_features(np.zeros(SAMPLE_RATE, np.float32))[15, ENERGY] + 5


@pytest.mark.parametrize("f0", [70.0, 110.0, 185.0, 262.0, 380.0])
def test_a_voice_like_tone_gives_its_pitch_and_full_voicing(f0):
    # Harmonics falling off as 1/h, like a glottal source: the period, not a multiple of it.
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    wave = sum(np.sin(2 * np.pi * f0 * h * t + h) / h for h in range(1, 10)).astype(np.float32) * 0.2
    f = audio_features(wave, pitch=True)[3:-3]
    np.testing.assert_allclose(100.0 * 2.0 ** f[:, PITCH], f0, rtol=0.005)
    assert f[:, VOICING].min() > 0.95


def test_a_pitch_glide_is_followed_and_noise_and_silence_are_unvoiced():
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    f0 = 120.0 + 40.0 * t  # 120 -> 200 Hz over 2 s
    wave = (0.3 * np.sin(2 * np.pi * np.cumsum(f0) / SAMPLE_RATE)).astype(np.float32)
    f = audio_features(wave, pitch=True)
    frames = np.arange(5, 55)
    np.testing.assert_allclose(100.0 * 2.0 ** f[frames, PITCH], 120.0 + 40.0 * frames / 30, rtol=0.01)
    noise = audio_features((0.1 * np.random.default_rng(0).standard_normal(SAMPLE_RATE)).astype(np.float32), pitch=True)
    assert noise[3:-3, VOICING].max() < 0.4
    silence = audio_features(np.zeros(SAMPLE_RATE, np.float32), pitch=True)
    assert np.all(silence[:, [VOICING, PITCH]] == 0)
    # A DC offset or hum below the range has no period in it: not a voice at 400 Hz.
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for hum in (np.full(SAMPLE_RATE, 0.1), 0.3 * np.sin(2 * np.pi * 30.0 * t), 0.1 + 0.2 * np.sin(2 * np.pi * 45.0 * t)):
        assert np.all(pitch_features(hum.astype(np.float32))[3:-3] == 0)


def test_pitch_columns_follow_the_speech_features_unchanged_and_come_alone_from_pitch_features():
    rng = np.random.default_rng(3)
    wave = (rng.standard_normal(16000 * 2 + 77) * 0.1).astype(np.float32)
    wave[8000:12000] += 0.3 * np.sin(2 * np.pi * 150.0 * np.arange(4000) / SAMPLE_RATE).astype(np.float32)
    both, speech = audio_features(wave, pitch=True), audio_features(wave)
    assert both.shape == (len(speech), FEATURE_DIM + len(PITCH_NAMES))
    assert np.array_equal(both[:, :FEATURE_DIM], speech)
    assert np.array_equal(both[:, FEATURE_DIM:], pitch_features(wave))
    mean, std = rng.normal(size=FEATURE_DIM).astype(np.float32), rng.uniform(1, 2, FEATURE_DIM).astype(np.float32)
    scaled = normalize(both, mean, std)
    np.testing.assert_allclose(scaled[:, :FEATURE_DIM], (speech - mean) / std, rtol=1e-6)
    assert np.array_equal(scaled[:, FEATURE_DIM:], both[:, FEATURE_DIM:])


def test_clicks_over_an_hour_land_on_their_frames():
    """Impulses placed at the exact times of chosen frames across an hour of audio peak in
    exactly those frames: no drift at the end. Streamed minute by minute to keep memory small."""
    hour = 3600 * SAMPLE_RATE
    click_frames = [0 + 3, 54_321, 107_990]
    click_samples = {int(frame_center(k)): k for k in click_frames}
    stream = FeatureStream()
    energies = []
    chunk = 60 * SAMPLE_RATE
    for start in range(0, hour, chunk):
        wave = np.zeros(chunk, np.float32)
        for sample in click_samples:
            if start <= sample < start + chunk:
                wave[sample - start] = 1.0
        energies.append(stream.push(wave)[:, ENERGY])
    energies.append(stream.finish()[:, ENERGY])
    energy = np.concatenate(energies)
    assert len(energy) == 108000
    for k in click_frames:
        window = energy[k - 2:k + 3]
        assert np.argmax(window) == 2, (k, window)  # the Hann window peaks at the frame's centre


@pytest.mark.parametrize("sizes, pitch", [([1], False), ([17, 5000, 3], False), ([BLOCK * 534], False),
                                          ([16000 * 2 + 7], False), ([17, 5000, 3], True)])
def test_streaming_equals_whole_clip_exactly(sizes, pitch):
    rng = np.random.default_rng(0)
    wave = (rng.standard_normal(16000 * 7 + 123) * np.repeat(rng.random(100), 1124)[: 16000 * 7 + 123]).astype(np.float32)
    whole = audio_features(wave, pitch=pitch)
    stream, pieces, pos, i = FeatureStream(pitch=pitch), [], 0, 0
    while pos < len(wave):
        size = sizes[i % len(sizes)]
        pieces.append(stream.push(wave[pos:pos + size]))
        pos += size
        i += 1
    pieces.append(stream.finish())
    streamed = np.concatenate(pieces)
    assert streamed.shape == whole.shape
    assert np.array_equal(streamed, whole)


def test_features_need_no_audio_beyond_32_ms_after_the_frame():
    rng = np.random.default_rng(1)
    wave = rng.standard_normal(16000 * 3).astype(np.float32)
    full = audio_features(wave)
    k = 40
    cut = int(frame_center(k)) + 512  # the end of frame k's window
    altered = wave.copy()
    altered[cut:] = rng.standard_normal(len(wave) - cut)
    assert np.array_equal(audio_features(altered)[:k + 1], full[:k + 1])


def test_rejects_non_mono_input():
    with pytest.raises(ValueError, match="mono"):
        audio_features(np.zeros((100, 2), np.float32))
