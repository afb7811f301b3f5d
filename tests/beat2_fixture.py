"""Make a tiny data set in the BEAT2 layout for tests: ``smplxflame_30/*.npz``, ``wave16k/*.wav``,
``train_test_split.csv``.

Motion is procedural and tied to the audio: every clip has "beats" (times drawn per clip); the
audio has a short noise burst at each beat (or is real espeak-ng speech), and the arms swing so
that their speed has a minimum exactly at each beat (the stroke's end), the way co-speech gestures
hold at a stressed syllable. So a model can learn audio -> motion, and BC has a known answer.
Speakers differ in swing amplitude, posture and handedness.

Use ``make_beat2(root, clips)``; ``break_npz`` / ``break_wav`` / ``remove_wav`` make the bad files
a long run must survive. Other test modules import this (``pythonpath = tests``).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
soundfile = pytest.importorskip("soundfile")

SAMPLE_RATE = 16000
FPS = 30


@dataclass(frozen=True)
class ClipSpec:
    id: str  # BEAT2 style: "<speaker>_<name>_<session>_<a>_<b>"
    split: str = "train"  # train / val / test / additional
    seconds: float = 4.0


def default_clips(speakers=(2, 4), per_speaker: int = 3, seconds: float = 4.0) -> list[ClipSpec]:
    """``per_speaker`` clips per speaker: all but the last are train, the last is test."""
    names = {1: "wayne", 2: "scott", 3: "solomon", 4: "lawrence", 5: "stewart"}
    clips = []
    for s in speakers:
        for i in range(per_speaker):
            split = "test" if i == per_speaker - 1 else "train"
            clips.append(ClipSpec(f"{s}_{names.get(s, 'spk')}_0_{i + 1}_{i + 1}", split, seconds))
    return clips


def beat_times(seconds: float, rng: np.random.Generator, min_gap: float = 0.5, max_gap: float = 0.9) -> np.ndarray:
    """Beat times in seconds, at least ``min_gap`` apart, none in the first or last 0.3 s."""
    times, t = [], 0.3 + rng.uniform(0.0, min_gap)
    while t < seconds - 0.3:
        times.append(t)
        t += rng.uniform(min_gap, max_gap)
    return np.asarray(times)


def click_audio(seconds: float, beats: np.ndarray, rng: np.random.Generator, amplitude: float = 0.5) -> np.ndarray:
    """Quiet noise floor plus a 40 ms decaying noise burst starting at each beat: clear onsets."""
    n = int(round(seconds * SAMPLE_RATE))
    wave = 0.002 * rng.standard_normal(n)
    burst_len = int(0.04 * SAMPLE_RATE)
    envelope = np.exp(-np.arange(burst_len) / (0.008 * SAMPLE_RATE))
    for t in beats:
        i = int(round(t * SAMPLE_RATE))
        seg = wave[i : i + burst_len]
        seg += amplitude * envelope[: len(seg)] * rng.standard_normal(len(seg))
    return np.clip(wave, -1.0, 1.0).astype(np.float32)


def espeak_audio(text: str, path: Path) -> np.ndarray:
    """Real speech from espeak-ng, resampled to 16 kHz mono."""
    from scipy.signal import resample_poly

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed: apt-get install espeak-ng (make test installs it)")
    raw = path.with_suffix(".espeak.wav")
    subprocess.run([exe, "-w", str(raw), text], check=True)
    wave, rate = soundfile.read(raw, dtype="float32")
    raw.unlink()
    if wave.ndim > 1:
        wave = wave.mean(axis=1)
    g = np.gcd(int(rate), SAMPLE_RATE)
    return resample_poly(wave, SAMPLE_RATE // g, int(rate) // g).astype(np.float32)


def beat_angle(num_frames: int, beats: np.ndarray) -> np.ndarray:
    """An angle per frame that advances by pi between consecutive beats, slowest at each beat:
    its rate is (0.5 + 3 u (1 - u)) x pi / gap for u in [0, 1] across a gap, so a joint circling
    with it has speed minima exactly on the beats at half the mean speed (above BC's 0.3)."""
    t = np.arange(num_frames) / FPS
    edges = np.concatenate([[0.0], beats, [num_frames / FPS + 1.0]])
    k = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2)
    u = (t - edges[k]) / (edges[k + 1] - edges[k])
    return np.pi * (k + 0.5 * u * u * (3 - 2 * u) + 0.5 * u)


def procedural_motion(num_frames: int, beats: np.ndarray, speaker: int, rng: np.random.Generator) -> dict:
    """BEAT2 npz content: poses (N,165), trans (N,3), expressions (N,100), betas, rate.

    The torso and the lead forearm circle (cone motions) at the beat angle's rate, so the speed of
    every upper-body joint dips on the beats; fingers, head and face follow the same phase."""
    style = np.random.default_rng(speaker)
    amp = 0.3 + 0.3 * style.random()  # forearm cone (rad)
    lean = 0.15 * (style.random() - 0.5)
    right_handed = style.random() < 0.5
    t = np.arange(num_frames) / FPS
    theta = beat_angle(num_frames, beats)
    c, s = np.cos(theta), np.sin(theta)
    poses = np.zeros((num_frames, 55, 3), np.float64)
    poses[:, 3, 0] = lean + 0.06 * c  # torso circles a little with the beat
    poses[:, 3, 2] = 0.06 * s
    poses[:, 16, 2] = -1.1  # arms down from the T-pose
    poses[:, 17, 2] = 1.1
    lead, other = (19, 18) if right_handed else (18, 19)
    sign = 1 if lead == 19 else -1
    poses[:, lead, 1] = sign * (0.6 + amp * c)
    poses[:, lead, 0] = amp * s
    poses[:, other, 1] = -sign * (0.4 + 0.4 * amp * c)
    poses[:, other, 0] = 0.4 * amp * s
    poses[:, 15, 0] = 0.05 * s  # head nods with the beat
    for j in range(25, 55):  # fingers curl with the stroke
        poses[:, j, 2] = (0.25 + 0.15 * c) * (1 if j < 40 else -1)
    poses[:, 22, 0] = 0.1 + 0.08 * np.sin(2 * np.pi * 3.0 * t)  # jaw
    poses[:, list(range(3, 55))] += 0.0005 * rng.standard_normal((num_frames, 52, 3))  # mocap noise
    trans = np.zeros((num_frames, 3))
    trans[:, 1] = 1.0
    trans[:, 0] = 0.02 * np.sin(2 * np.pi * 0.1 * t)  # slow weight shift
    expressions = np.zeros((num_frames, 100))
    expressions[:, :10] = 0.5 * np.sin(2 * np.pi * (0.2 + 0.05 * np.arange(10)) * t[:, None])
    expressions[:, 0] += c
    return {
        "poses": poses.reshape(num_frames, 165).astype(np.float32),
        "trans": trans.astype(np.float32),
        "expressions": expressions.astype(np.float32),
        "betas": np.zeros(300, np.float32),
        "model": np.array("smplx2020"),
        "gender": np.array("neutral"),
        "mocap_frame_rate": np.array(30),
    }


def make_beat2(
    root: Path,
    clips: list[ClipSpec] | None = None,
    *,
    audio: str = "clicks",
    seed: int = 0,
) -> Path:
    """Write a BEAT2-layout folder under ``root`` and return it. ``audio`` is "clicks" (noise
    bursts at the beats) or "espeak" (real speech; beats then come from the speech's own onsets
    only loosely, which is fine for pipeline tests)."""
    root = Path(root)
    clips = default_clips() if clips is None else clips
    (root / "smplxflame_30").mkdir(parents=True, exist_ok=True)
    (root / "wave16k").mkdir(parents=True, exist_ok=True)
    rows = ["id,type"]
    beats_by_id: dict[str, list[float]] = {}
    for n, clip in enumerate(clips):
        rng = np.random.default_rng(seed * 1000 + n)
        speaker = int(clip.id.split("_")[0])
        beats = beat_times(clip.seconds, rng)
        if audio == "espeak":
            words = ["hello", "gesture", "model", "speech", "motion", "hands", "beat", "wave"]
            text = " ".join(rng.choice(words, size=int(clip.seconds * 2.5)))
            wave = espeak_audio(text, root / "wave16k" / f"{clip.id}.wav")
            seconds = int(len(wave) / SAMPLE_RATE)  # trimmed to whole seconds, as BEAT2 is
            wave = wave[: seconds * SAMPLE_RATE]
            beats = beats[beats < seconds - 0.3]
        elif audio == "clicks":
            seconds = clip.seconds
            wave = click_audio(seconds, beats, rng)
        else:
            raise ValueError(f"audio must be 'clicks' or 'espeak', got {audio!r}")
        num_frames = int(round(seconds * FPS))
        soundfile.write(root / "wave16k" / f"{clip.id}.wav", wave, SAMPLE_RATE, subtype="PCM_16")
        np.savez(root / "smplxflame_30" / f"{clip.id}.npz", **procedural_motion(num_frames, beats, speaker, rng))
        beats_by_id[clip.id] = [float(b) for b in beats]
        rows.append(f"{clip.id},{clip.split}")
    (root / "train_test_split.csv").write_text("\n".join(rows) + "\n")
    # Not part of the BEAT2 layout (readers ignore it): the true beat times, for metric tests.
    (root / "fixture_beats.json").write_text(json.dumps(beats_by_id))
    return root


def add_clip(root: Path, clip: ClipSpec, *, seed: int = 99) -> None:
    """Add one more (good) clip and its csv row to an existing folder."""
    rng = np.random.default_rng(seed)
    speaker = int(clip.id.split("_")[0])
    beats = beat_times(clip.seconds, rng)
    soundfile.write(root / "wave16k" / f"{clip.id}.wav", click_audio(clip.seconds, beats, rng), SAMPLE_RATE)
    np.savez(
        root / "smplxflame_30" / f"{clip.id}.npz",
        **procedural_motion(int(round(clip.seconds * FPS)), beats, speaker, rng),
    )
    with open(root / "train_test_split.csv", "a") as f:
        f.write(f"{clip.id},{clip.split}\n")


def break_npz(root: Path, clip_id: str) -> Path:
    """Truncate a motion file half way: a corrupt zip."""
    path = root / "smplxflame_30" / f"{clip_id}.npz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def break_wav(root: Path, clip_id: str) -> Path:
    path = root / "wave16k" / f"{clip_id}.wav"
    path.write_bytes(b"not a wav file at all")
    return path


def remove_wav(root: Path, clip_id: str) -> None:
    (root / "wave16k" / f"{clip_id}.wav").unlink()


def shorten_wav(root: Path, clip_id: str, seconds: float) -> None:
    """Cut the audio to ``seconds``: motion and audio no longer match in length."""
    path = root / "wave16k" / f"{clip_id}.wav"
    wave, rate = soundfile.read(path, dtype="float32")
    soundfile.write(path, wave[: int(seconds * rate)], rate)
