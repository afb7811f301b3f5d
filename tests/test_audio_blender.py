"""Decoding audio with Blender's own ``aud`` module, and ``load_audio`` using it when soundfile is missing."""
from __future__ import annotations

import subprocess
import sys
import wave

import numpy as np
import pytest

from conftest import REPO

pytestmark = pytest.mark.blender


@pytest.fixture(scope="module")
def aud(bpy):
    if not getattr(bpy.app.build_options, "audaspace", True):
        pytest.skip(f"this bpy {bpy.app.version_string} wheel is built without audaspace, so it has no 'aud' "
                    "module (Blender itself ships it); load_audio falls back to the wave module here")
    import aud

    return aud


def read_wave(path):
    with wave.open(str(path), "rb") as f:
        frames = f.readframes(f.getnframes())
        channels, rate, width = f.getnchannels(), f.getframerate(), f.getsampwidth()
    assert width == 2
    data = np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0
    return data.reshape(-1, channels), rate


def write_wave(path, data, rate):
    data = np.clip(np.round(np.asarray(data) * 32767.0), -32768, 32767).astype("<i2")
    channels = 1 if data.ndim == 1 else data.shape[1]
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(data.tobytes())
    return path


def test_decodes_speech_exactly_like_the_wave_module(aud, speech_wav):
    from gestura.inference.audio_blender import decode_with_aud

    samples, rate = decode_with_aud(speech_wav)
    reference, reference_rate = read_wave(speech_wav)
    assert rate == reference_rate == 22050
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert samples.shape[0] == reference.shape[0] > rate * 3
    np.testing.assert_allclose(samples, reference[:, 0], atol=1e-4)


def test_stereo_is_averaged_to_mono_and_resampled_on_request(aud, speech_wav, tmp_path):
    from gestura.inference.audio_blender import decode_with_aud

    voice, rate = read_wave(speech_wav)
    voice = voice[:, 0]
    tone = 0.25 * np.sin(2 * np.pi * 440.0 * np.arange(voice.size) / rate)
    path = write_wave(tmp_path / "stereo.wav", np.stack([voice * 0.5, tone], axis=1), rate)

    samples, got_rate = decode_with_aud(path)
    assert got_rate == rate
    np.testing.assert_allclose(samples, (voice * 0.5 + tone) / 2, atol=2e-4)

    resampled, new_rate = decode_with_aud(path, rate=16000)
    assert new_rate == 16000
    assert abs(resampled.size - voice.size * 16000 / rate) <= 2
    # The 440 Hz tone survives resampling: its spectrum peaks at the same frequency.
    spectrum = np.abs(np.fft.rfft(resampled - resampled.mean()))
    freqs = np.fft.rfftfreq(resampled.size, 1 / 16000)
    band = (freqs > 300) & (freqs < 600)
    assert abs(freqs[band][np.argmax(spectrum[band])] - 440.0) < 2.0


def test_unreadable_and_missing_files_give_clear_errors(aud, tmp_path):
    from gestura.inference.audio import AudioError
    from gestura.inference.audio_blender import decode_with_aud

    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    with pytest.raises(AudioError, match="could not read .*notes.wav.* as audio"):
        decode_with_aud(text)
    with pytest.raises(AudioError, match="does not exist"):
        decode_with_aud(tmp_path / "missing.wav")


def test_without_aud_the_error_names_the_fix(bpy):
    try:
        import aud  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("this bpy has 'aud'; the message for a Python without it is checked on the bpy 4.2 wheel")
    from gestura.inference.audio import AudioError
    from gestura.inference.audio_blender import aud_available, decode_with_aud

    assert not aud_available()
    with pytest.raises(AudioError, match="install soundfile"):
        decode_with_aud(REPO / "README.md")


def test_load_audio_uses_aud_when_soundfile_is_missing(aud, speech_wav, tmp_path):
    # FLAC cannot be read by the wave module, so only aud can have decoded it once soundfile is gone.
    soundfile = pytest.importorskip("soundfile", reason="soundfile writes the FLAC test file")
    voice, rate = read_wave(speech_wav)
    flac = tmp_path / "speech.flac"
    soundfile.write(str(flac), voice[:, 0], rate)
    script = (
        "import sys; sys.modules['soundfile'] = None\n"  # an import of soundfile now fails
        "import bpy, numpy as np\n"
        "from gestura.inference.audio import load_audio\n"
        f"wave16k = load_audio({str(flac)!r})\n"
        "print('SAMPLES', wave16k.dtype, wave16k.ndim, wave16k.size, float(np.abs(wave16k).max()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("SAMPLES")][-1].split()
    assert line[1:3] == ["float32", "1"]
    assert abs(int(line[3]) - voice.shape[0] * 16000 / rate) <= 2
    assert 0.3 < float(line[4]) <= 1.0
