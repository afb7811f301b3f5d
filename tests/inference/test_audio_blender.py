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
    assert samples.dtype == np.float32 and samples.shape[1] == 1
    assert samples.shape[0] == reference.shape[0] > rate * 3
    np.testing.assert_allclose(samples, reference, atol=1e-4)


def test_stereo_keeps_its_channels_for_the_shared_mix_and_is_resampled_on_request(aud, speech_wav, tmp_path):
    from gestura.inference.audio import prepare_waveform
    from gestura.inference.audio_blender import decode_with_aud

    voice, rate = read_wave(speech_wav)
    voice = voice[:, 0]
    tone = 0.25 * np.sin(2 * np.pi * 440.0 * np.arange(voice.size) / rate)
    channels = np.stack([voice * 0.5 + tone, voice * 0.3 + tone], axis=1)
    path = write_wave(tmp_path / "stereo.wav", channels, rate)

    samples, got_rate = decode_with_aud(path)
    assert got_rate == rate
    np.testing.assert_allclose(samples, channels, atol=2e-4)
    # audio.mix_to_mono, the one down-mix every decoder goes through: here the plain mean.
    np.testing.assert_allclose(prepare_waveform(samples, rate, sample_rate=rate), channels.mean(axis=1), atol=2e-4)

    resampled, new_rate = decode_with_aud(path, rate=16000)
    assert new_rate == 16000 and resampled.shape[1] == 2
    resampled = resampled.mean(axis=1)
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


def test_blenders_decoders_mix_cancelling_stereo_and_name_empty_and_cut_files(bpy, speech_wav, tmp_path):
    """Where Blender decodes (no soundfile): ``aud`` on 5.0, the ``wave`` module on the 4.2 wheel."""
    voice, rate = read_wave(speech_wav)
    voice = 0.9 * voice[:, 0] / np.abs(voice).max()
    mono = write_wave(tmp_path / "mono.wav", voice, rate)
    stereo = write_wave(tmp_path / "stereo.wav", np.stack([voice, -voice], axis=1), rate)
    empty = write_wave(tmp_path / "empty.wav", np.zeros(0), rate)
    raw = mono.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(raw[:(len(raw) // 2) | 1])  # ends inside a sample
    script = (
        "import sys; sys.modules['soundfile'] = None\n"  # an import of soundfile now fails: Blender's case
        "import bpy, numpy as np\n"
        "from gestura.inference.audio import AudioError, load_audio\n"
        "from gestura.inference.notices import collect\n"
        "with collect() as found:\n"
        f"    a, b = load_audio({str(stereo)!r}), load_audio({str(mono)!r})\n"
        "print('MIX', a.shape == b.shape and bool(np.abs(a - b).max() < 1e-6), float(np.abs(a).max()), found)\n"
        f"for path in ({str(empty)!r}, {str(cut)!r}, {str(tmp_path)!r}):\n"
        "    try:\n"
        "        with collect() as found:\n"
        "            print('OK', load_audio(path).size, found)\n"
        "    except AudioError as error:\n"
        "        print('ERROR', error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [x for x in done.stdout.splitlines() if x.split(" ")[0] in ("MIX", "OK", "ERROR")]
    assert lines[0].startswith("MIX True 0.8"), lines
    assert "opposite phase, so they cancel when mixed: using the left channel only" in lines[0]
    assert lines[1] == f"ERROR Audio file '{empty}' is empty (no samples): choose a recording with sound in it"
    # The part of a cut file that is there (aud decodes it; the wave module says it is truncated).
    assert lines[2].startswith("OK ") and int(lines[2].split()[1]) > 16000 * 2
    assert "internal" not in lines[2] and "buffer size" not in done.stdout + done.stderr
    assert lines[3].startswith(f"ERROR '{tmp_path}' is a folder, not an audio file")


def test_with_soundfile_too_what_soundfile_cannot_read_is_decoded_by_aud(aud, speech_wav, tmp_path):
    # The pip bpy module with soundfile installed: soundfile does not know AAC or Matroska, Blender does.
    pytest.importorskip("soundfile")
    from gestura.inference.audio import AudioError, load_audio, readable_extensions

    voice, rate = read_wave(speech_wav)
    for container, codec, name in ((aud.CONTAINER_AAC, aud.CODEC_AAC, "talk.aac"),
                                   (aud.CONTAINER_MATROSKA, aud.CODEC_VORBIS, "talk.mka")):
        aud.Sound(str(speech_wav)).write(str(tmp_path / name), 44100, aud.CHANNELS_MONO, aud.FORMAT_FLOAT32,
                                         container, codec, 96000)
        wave16k = load_audio(tmp_path / name)
        assert abs(len(wave16k) - voice.shape[0] * 16000 / rate) < 0.1 * 16000, name
        assert 0.3 < float(np.abs(wave16k).max()) <= 1.0
    assert {".aac", ".mka", ".flac"} <= set(readable_extensions())
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    # Neither decoder reads it: one message, with the formats this Python has.
    with pytest.raises(AudioError, match=r"cannot be decoded \(.*\): it is not audio or is damaged; check it, or "
                                         r"convert it with ffmpeg to one of \.wav, \.flac, .*\.aac"):
        load_audio(text)
