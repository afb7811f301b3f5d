"""``gestura synth``: write the synthetic co-speech corpus in the BEAT2 layout.

    gestura synth --out DIR --hours H [--seed S] [--jobs J]

DIR gets ``wave16k/<id>.wav`` (espeak-ng speech, 16 kHz mono 16-bit), ``smplxflame_30/<id>.npz``
(gestures from ``gestures.synthesize``, plus ``stroke_apex``: (N,) float32, 1 on the frames of
the planned stroke apexes), ``text/<id>.txt`` (what was said),
``train_test_split.csv`` and ``synth.json`` (the settings and the styles). About half of the
clips have one or two silent gaps of 1-8 s between sentences (``plan_gaps``), where the
synthesizer rests. Ids are
``<speaker>_<style>_0_<n>_<n>`` as in BEAT2. Every clip is trimmed to the whole seconds covered
by both its audio and its motion. Test and val clips use only held-out sentences
(``text.is_held_out``). Voices, pitches and deliveries are drawn per clip independently of the
speaker, so a style can only be learnt from the speaker id; a clip's delivery (``LIVELINESS``:
its speech rate and how much its loudness swells and falls) sets how energetically that
speaker gestures in it (``styles.lively``). The same seed gives the same corpus
whatever ``--jobs`` is.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ...errors import CommandError

SAMPLE_RATE = 16000
# 2: a clip's delivery (speech rate, loudness swells) sets its gesture energy (styles.lively).
FORMAT_VERSION = 2
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan")
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m7", "+f1", "+f2", "+f3", "+f4")
SPLIT_SHARES = (("test", 0.08), ("val", 0.04))  # the rest is train
CLIP_SECONDS = (35.0, 65.0)
# About half of the clips get one or two silent gaps between sentences, so that a model learns to
# rest in silence (the synthesizer rests its hands in every pause of the speech).
GAP_CLIP_SHARE = 0.5
GAP_SECONDS = (1.0, 8.0)
ROOM_NOISE = 3e-4  # standard deviation of the noise in noisy gaps, about -70 dBFS
# A clip's delivery, drawn uniformly in [0, 1]: 0 speaks at RATES[0] words a minute with an even
# loudness, 1 at RATES[1] with loudness swells of SWELL_DB standard deviation over about 1.5 s.
RATES = (135, 185)
SWELL_DB = 6.0


@dataclass(frozen=True)
class ClipPlan:
    id: str
    split: str
    style: str
    seed: int
    seconds: float  # aimed-for length; the real one follows the speech


def plan_clips(hours: float, seed: int) -> list[ClipPlan]:
    """Clip ids, splits, styles and seeds adding up to ``hours``; every split has every style."""
    import numpy as np

    from .styles import STYLES

    rng = np.random.default_rng(seed)
    total = hours * 3600.0
    per_style = total / len(STYLES)
    plans: list[ClipPlan] = []
    for style in STYLES:
        budget = {split: per_style * share for split, share in SPLIT_SHARES}
        budget["train"] = per_style - sum(budget.values())
        n = 0
        for split in ("train", "val", "test"):
            made = 0.0
            # Every split gets at least one clip of every style, however small the corpus.
            while made < budget[split] - 1.0 or (made == 0.0):
                seconds = min(float(rng.uniform(*CLIP_SECONDS)), max(budget[split] - made, 4.0))
                n += 1
                clip_id = f"{style.speaker_id}_{style.name}_0_{n}_{n}"
                plans.append(ClipPlan(clip_id, split, style.name, int(rng.integers(2**31)), seconds))
                made += seconds
    return plans


def espeak_exe() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise CommandError("espeak-ng is not installed: install it (apt-get install espeak-ng) or run `make test` once")
    return exe


def speak(lines: list[str], voice: str, rate: int, pitch: int, gap: int, workdir: Path):
    """espeak-ng speech of ``lines`` as float32 at 16 kHz, with a short silence before and after."""
    import numpy as np
    import soundfile
    from scipy.signal import resample_poly

    text_path = workdir / "text.txt"
    wav_path = workdir / "speech.wav"
    text_path.write_text(" ".join(lines) + "\n")
    done = subprocess.run(
        [espeak_exe(), "-v", voice, "-s", str(rate), "-p", str(pitch), "-g", str(gap), "-w", str(wav_path),
         "-f", str(text_path)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0 or not wav_path.exists():
        raise RuntimeError(f"espeak-ng failed for voice {voice}: {done.stderr.strip()}")
    wave, rate_in = soundfile.read(wav_path, dtype="float64")
    if wave.ndim > 1:
        wave = wave.mean(axis=1)
    if rate_in != SAMPLE_RATE:
        from math import gcd

        g = gcd(int(rate_in), SAMPLE_RATE)
        wave = resample_poly(wave, SAMPLE_RATE // g, int(rate_in) // g)
    return wave.astype(np.float32)


def plan_gaps(plan: ClipPlan) -> list[float]:
    """Lengths (s) of the silent gaps to put between sentences of the clip: none for about half
    of the clips (``GAP_CLIP_SHARE``), one or two of ``GAP_SECONDS`` for the others. Drawn from
    their own generator, so a clip without gaps is spoken exactly as before gaps existed."""
    import numpy as np

    rng = np.random.default_rng([plan.seed, 15])
    if rng.random() >= GAP_CLIP_SHARE:
        return []
    lengths = [float(x) for x in rng.uniform(*GAP_SECONDS, int(rng.integers(1, 3)))]
    # A short clip keeps at least 8 s of speech: drop gaps from the end until it does.
    while lengths and plan.seconds - sum(lengths) < 8.0:
        lengths.pop()
    return lengths


def speak_clip(plan: ClipPlan) -> tuple:
    """The clip's speech with its silent lead and tail, before trimming: (wave 16 kHz float32,
    text lines, voice description, gaps). ``gaps``: (start, end) seconds in the wave of the silent
    gaps between sentences (``plan_gaps``), exact zeros or, in about half of them, room noise
    near -70 dBFS."""
    import numpy as np

    from . import text

    rng = np.random.default_rng(plan.seed)
    voice = VOICES[int(rng.integers(len(VOICES)))] + VARIANTS[int(rng.integers(len(VARIANTS)))]
    delivery = np.random.default_rng([plan.seed, 17]).random()  # 0 calm .. 1 animated
    rate = int(round(RATES[0] + (RATES[1] - RATES[0]) * delivery))  # words per minute
    pitch = int(rng.integers(25, 76))
    gap = int(rng.integers(0, 5))  # extra pause between words, 10 ms units
    lengths = plan_gaps(plan)
    words = int((plan.seconds - sum(lengths)) * rate / 60.0 * 0.92)
    lines = text.paragraph(rng, max(words, 6), held_out=plan.split != "train")
    gap_rng = np.random.default_rng([plan.seed, 16])
    lengths = lengths[: len(lines) - 1]  # gaps go between sentences
    after = sorted(int(k) for k in gap_rng.choice(len(lines) - 1, len(lengths), replace=False)) if lengths else []
    groups, first = [], 0
    for k in after:
        groups.append(lines[first: k + 1])
        first = k + 1
    groups.append(lines[first:])
    with tempfile.TemporaryDirectory(prefix="gestura-synth-") as tmp:
        pieces = [speak(group, voice, rate, pitch, gap, Path(tmp)) for group in groups]
    lead = np.zeros(int(rng.uniform(0.3, 0.9) * SAMPLE_RATE), np.float32)
    tail = np.zeros(int(rng.uniform(0.4, 1.0) * SAMPLE_RATE), np.float32)
    pieces = [piece * swell(len(piece), SWELL_DB * delivery, gap_rng) for piece in pieces]
    peak = max(float(np.abs(piece).max()) for piece in pieces) or 1.0
    scale = rng.uniform(0.5, 0.9)
    parts, gaps, at = [lead], [], len(lead)
    for k, piece in enumerate(pieces):
        parts.append(piece / peak * scale)
        at += len(piece)
        if k < len(lengths):
            silence = np.zeros(int(round(lengths[k] * SAMPLE_RATE)), np.float32)
            if gap_rng.random() < 0.5:
                silence = gap_rng.normal(0.0, ROOM_NOISE, len(silence)).astype(np.float32)
            parts.append(silence)
            gaps.append((at / SAMPLE_RATE, (at + len(silence)) / SAMPLE_RATE))
            at += len(silence)
    wave = np.concatenate([*parts, tail]).astype(np.float32)
    return wave, lines, (f"voice {voice}, rate {rate} wpm, pitch {pitch}, word gap {gap}, "
                         f"loudness swells {SWELL_DB * delivery:.1f} dB"), gaps


def swell(n: int, spread_db: float, rng) -> "np.ndarray":
    """(n,) float32 gain at 16 kHz whose level in dB wanders with standard deviation about
    ``spread_db`` over periods of 1-3 s (a few random sinusoids): an animated delivery's swells."""
    import numpy as np

    t = np.arange(n) / SAMPLE_RATE
    periods, phases = rng.uniform(1.0, 3.0, 3), rng.uniform(0, 2 * np.pi, 3)
    level = sum(np.sin(2 * np.pi * t / p + f) for p, f in zip(periods, phases)) * (spread_db / np.sqrt(1.5))
    return (10.0 ** (level / 20.0)).astype(np.float32)


def render_clip(plan: ClipPlan) -> tuple:
    """Speak and synthesize one clip, trimmed to whole seconds: (wave 16 kHz float32, Motion,
    stroke_apex (N,) float32 with 1 on the frames of the planned stroke apexes, text lines, voice
    description). The motion is ``gestures.synthesize(speak_clip(plan)[0], style, plan.seed)``'s."""
    from ...rigs.motion import Motion
    from .gestures import synthesize_with_plan
    from .styles import get_style

    wave, lines, description, _ = speak_clip(plan)
    motion, units, _ = synthesize_with_plan(wave, get_style(plan.style), seed=plan.seed)
    seconds = int(min(len(wave) / SAMPLE_RATE, motion.num_frames / motion.fps))
    frames = int(seconds * motion.fps)
    motion = Motion(motion.poses[:frames], motion.trans[:frames], motion.expressions[:frames], motion.fps)
    return wave[: seconds * SAMPLE_RATE], motion, apex_channel(units, frames, motion.fps), lines, description


def apex_channel(units, num_frames: int, fps: float):
    """(num_frames,) float32: 1 on the frame nearest each planned stroke apex of ``units`` (the
    instant a stroke ends, at the hand's speed minimum after the stroke), 0 elsewhere."""
    import numpy as np

    out = np.zeros(num_frames, np.float32)
    frames = np.rint(np.array([a for u in units for a in u.apexes], np.float64) * fps).astype(np.int64)
    out[frames[(frames >= 0) & (frames < num_frames)]] = 1.0
    return out


def make_clip(plan: ClipPlan, out: str) -> tuple[str, float]:
    """Speak, synthesize and write one clip (its npz carries ``stroke_apex``); returns (id, seconds)."""
    import soundfile

    from ...rigs.motion_io import save_npz
    from ..dataset import STROKE_APEX

    wave, motion, stroke_apex, lines, description = render_clip(plan)
    root = Path(out)
    soundfile.write(root / "wave16k" / f"{plan.id}.wav", wave, SAMPLE_RATE, subtype="PCM_16")
    save_npz(motion, root / "smplxflame_30" / f"{plan.id}.npz", overwrite=True, channels={STROKE_APEX: stroke_apex})
    (root / "text" / f"{plan.id}.txt").write_text(f"# {description}\n" + "\n".join(lines) + "\n")
    return plan.id, motion.num_frames / motion.fps


def _prepare_folder(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file: give a folder")
    if out.exists() and any(out.iterdir()):
        if not (out / "synth.json").exists():
            raise CommandError(f"--out {out} is not empty and holds no synthetic corpus: give an empty or new folder")
        if not overwrite:
            raise CommandError(f"{out} already holds a synthetic corpus: pass --overwrite to replace it, or choose another folder")
        for name in ("wave16k", "smplxflame_30", "text"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("train_test_split.csv", "synth.json"):
            (out / name).unlink(missing_ok=True)
    try:
        for name in ("wave16k", "smplxflame_30", "text"):
            (out / name).mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a read-only or virtual file system (/proc), no permission, a full disk
        raise CommandError(f"cannot create the corpus folder {out} ({error.strerror or error}): "
                           "choose a folder you can write to") from None


def write_corpus(out, hours: float, seed: int = 0, jobs: int = 2, overwrite: bool = False) -> int:
    """Write about ``hours`` of synthetic speech and gestures into the folder ``out`` (BEAT2 layout),
    with ``jobs`` worker processes; the same ``seed`` gives the same corpus. Returns 0; raises
    ``CommandError`` naming the option to change for bad arguments or a folder in the way."""
    if not (hours > 0):
        raise CommandError(f"--hours must be positive, got {hours}")
    if hours > 200:
        raise CommandError(f"--hours {hours} is more than 200 hours: ask for less")
    if jobs < 1:
        raise CommandError(f"--jobs must be at least 1, got {jobs}")
    espeak_exe()
    out = Path(out)
    _prepare_folder(out, overwrite)
    from .styles import STYLES

    plans = plan_clips(hours, seed)
    total_planned = sum(p.seconds for p in plans)
    print(f"synth: {len(plans)} clips, about {total_planned / 3600:.2f} h, {len(STYLES)} speakers, "
          f"{jobs} jobs -> {out}", flush=True)
    started = time.time()
    written: dict[str, float] = {}
    with ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else _Serial() as pool:
        futures = [pool.submit(make_clip, plan, str(out)) for plan in plans]
        for k, future in enumerate(futures, start=1):
            clip_id, seconds = future.result()
            written[clip_id] = seconds
            done_s = sum(written.values())
            elapsed = time.time() - started
            print(f"  [{k}/{len(plans)}] {clip_id}: {seconds:.0f} s  ({done_s / 3600:.2f} h, {elapsed:.0f} s elapsed)",
                  flush=True)
    with open(out / "train_test_split.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "type"])
        for plan in plans:
            writer.writerow([plan.id, plan.split])
    by_split = {s: sum(written[p.id] for p in plans if p.split == s) for s in ("train", "val", "test")}
    manifest = {
        "format": "gestura-synth",
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "hours_requested": hours,
        "seconds": by_split,
        "clips": {s: sum(1 for p in plans if p.split == s) for s in ("train", "val", "test")},
        "styles": [s.to_dict() for s in STYLES],
        "voices": list(VOICES),
        "variants": list(VARIANTS),
        "note": "synthetic data: espeak-ng speech over generated text; procedural gestures (gestura.training.synth)",
    }
    (out / "synth.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"synth: wrote {len(plans)} clips, {sum(by_split.values()) / 3600:.2f} h "
          f"(train {by_split['train'] / 60:.1f} min, val {by_split['val'] / 60:.1f} min, "
          f"test {by_split['test'] / 60:.1f} min) in {time.time() - started:.0f} s", flush=True)
    return 0


class _Serial:
    """The executor interface, run in this process (``--jobs 1``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        return _Done(fn(*args))


class _Done:
    def __init__(self, value):
        self._value = value

    def result(self):
        return self._value

