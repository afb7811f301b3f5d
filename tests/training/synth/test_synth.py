"""The procedural gesture synthesizer on real espeak-ng speech: smooth, within joint limits, feet
planted, strokes on stressed syllables, styles that differ, deterministic per seed; and its parts
(prosody analysis, IK, text generator, preview)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

# The Blender 4.2 environment (pytest -m blender) has neither: it only has to collect this module.
soundfile = pytest.importorskip("soundfile")
pytest.importorskip("scipy")
from scipy.signal import argrelextrema, resample_poly  # noqa: E402

from conftest import espeak  # noqa: E402
from gestura.rigs.kinematics import forward_kinematics  # noqa: E402
from gestura.rigs.rest_skeleton import default_rest_joints
from gestura.rigs.rotations import axis_angle_to_matrix
from gestura.rigs.skeleton import FOOT_JOINTS, JOINT_INDEX as J
from gestura.training import metrics
from gestura.training.synth import gestures, ik, prosody, styles, text

TEXTS = (
    "Good morning, everyone. Today I want to show you three simple ideas about the garden. "
    "First, water the roots, not the leaves. Second, plant something new every spring. "
    "And finally, when you are not sure what to do, ask the people who live there.",
    "Why does the train always leave at six? I think that the timetable explains almost everything, "
    "but that is only half the story. Believe me, the old harbour hides the most beautiful view!",
)


def _speech(tmp_path_factory, text_: str, voice: str, speed: int, pitch: int = 50) -> np.ndarray:
    path = tmp_path_factory.mktemp("synth") / "speech.wav"
    espeak(text_, path, voice=voice, speed=speed, pitch=pitch)
    wave, rate = soundfile.read(path)
    wave = resample_poly(wave, 320, 441) if rate == 22050 else wave
    silence = np.zeros(8000)
    return np.concatenate([silence, wave, silence])


@pytest.fixture(scope="module")
def speeches(tmp_path_factory) -> list[np.ndarray]:
    return [_speech(tmp_path_factory, TEXTS[0], "en-us", 150), _speech(tmp_path_factory, TEXTS[1], "en-gb+f3", 165, 60)]


@pytest.fixture(scope="module")
def rest() -> np.ndarray:
    return default_rest_joints()


@pytest.fixture(scope="module")
def clips(speeches, rest):
    """{style: [(motion, units, prosody, positions, wave)]} for every style on both speeches."""
    out = {}
    for style in styles.STYLES:
        out[style.name] = []
        for k, wave in enumerate(speeches):
            motion, units, pro = gestures.synthesize_with_plan(wave, style, seed=k)
            positions, _ = forward_kinematics(motion.poses.astype(np.float64), motion.trans, rest)
            out[style.name].append((motion, units, pro, positions, wave))
    return out


def _all(clips):
    return [c for per_style in clips.values() for c in per_style]


# ----------------------------------------------------------------------------- motion quality
def test_motion_has_the_speech_length_and_valid_arrays(clips, speeches):
    for motion, _, _, _, wave in _all(clips):
        assert motion.fps == 30.0
        assert motion.num_frames == int(len(wave) * 30 // 16000)
        assert np.isfinite(motion.poses).all() and np.isfinite(motion.expressions).all()


def test_motion_is_smooth_no_jitter(clips):
    """Bounded jerk, and almost no velocity power above 8 Hz; the same motion with 3 mm of noise
    fails both checks (so the checks can fail)."""
    rng = np.random.default_rng(0)

    def smooth(p) -> tuple[float, float]:
        jerk = metrics.jitter(p)
        v = np.diff(p[:, [J["left_wrist"], J["right_wrist"], J["head"]]], axis=0)
        power = np.abs(np.fft.rfft(v - v.mean(axis=0), axis=0)) ** 2
        freqs = np.fft.rfftfreq(len(v), 1 / 30)
        return jerk, power[freqs > 8].sum() / power.sum()

    for motion, _, _, positions, _ in _all(clips):
        jerk, high = smooth(positions)
        assert jerk < 400.0, jerk
        assert high < 0.05, high
        noisy_jerk, noisy_high = smooth(positions + rng.normal(0, 0.003, positions.shape))
        assert noisy_jerk > 400.0 and noisy_high > 0.05


# Largest rotation angle (rad) any local joint rotation may have in standing co-speech gesture.
_LIMITS = {
    "pelvis": 0.25, "left_hip": 0.5, "right_hip": 0.5, "left_knee": 0.6, "right_knee": 0.6,
    "spine1": 0.15, "spine2": 0.15, "spine3": 0.2, "left_ankle": 0.6, "right_ankle": 0.6,
    "left_foot": 0.01, "right_foot": 0.01, "neck": 0.4, "head": 0.55, "left_collar": 0.35,
    "right_collar": 0.35, "left_shoulder": 2.0, "right_shoulder": 2.0, "left_elbow": 2.6,
    "right_elbow": 2.6, "left_wrist": 1.7, "right_wrist": 1.7, "jaw": 0.4,
    "left_eye_smplhf": 0.0, "right_eye_smplhf": 0.0,
}


def test_joint_limits(clips):
    for motion, *_ in _all(clips):
        angles = np.linalg.norm(motion.poses, axis=-1)
        for name, limit in _LIMITS.items():
            assert angles[:, J[name]].max() <= limit + 1e-4, (name, angles[:, J[name]].max())
        assert angles[:, 25:].max() < 1.8  # finger joints
        # The jaw only opens (positive turn about x), never past about 17 degrees.
        jaw = motion.poses[:, J["jaw"]]
        assert jaw[:, 0].min() > 0.0 and np.abs(jaw[:, 1:]).max() < 1e-6


def test_elbows_and_knees_bend_the_anatomical_way(clips):
    """Elbows bend toward the front (never hyperextend), knees forward, fingers toward the palm."""
    for motion, _, _, p, _ in _all(clips):
        for side in ("left", "right"):
            shoulder, elbow, wrist = (p[:, J[f"{side}_{n}"]] for n in ("shoulder", "elbow", "wrist"))
            upper, fore = elbow - shoulder, wrist - elbow
            cos = np.sum(upper * fore, axis=-1) / np.linalg.norm(upper, axis=-1) / np.linalg.norm(fore, axis=-1)
            assert cos.min() > np.cos(2.6)
            hip, knee, ankle = (p[:, J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
            # The knee sits in front of (or on) the hip-ankle line.
            t = np.sum((knee - hip) * (ankle - hip), -1) / np.sum((ankle - hip) ** 2, -1)
            closest = hip + t[:, None] * (ankle - hip)
            assert (knee - closest)[:, 2].min() > -1e-4
            # Finger flexion is a turn about -z (left) / +z (right) in the hand's frame: never backward.
            sign = -1.0 if side == "left" else 1.0
            fingers = [J[f"{side}_{f}{k}"] for f in ("index", "middle", "ring", "pinky") for k in (1, 2, 3)]
            assert (sign * motion.poses[:, fingers, 2]).min() > -0.05


def test_hands_stay_out_of_the_torso(clips):
    """Wrists never enter the torso: inside the torso's width, between hips and shoulders, they are
    in front of the chest."""
    for motion, _, _, p, _ in _all(clips):
        chest = p[:, J["spine3"]]
        for side in ("left", "right"):
            w = p[:, J[f"{side}_wrist"]]
            local = w - chest
            inside = (np.abs(local[:, 0]) < 0.12) & (w[:, 1] > p[:, J["pelvis"], 1]) & (w[:, 1] < p[:, J["neck"], 1])
            assert (local[inside, 2] > 0.1).all(), local[inside, 2].min()


def test_feet_stay_planted(clips):
    """Weight shifts move the pelvis (root translation) while the feet stay exactly in place."""
    for motion, _, _, p, _ in _all(clips):
        feet = p[:, list(FOOT_JOINTS)]
        assert np.abs(feet - feet[0]).max() < 1e-5
        assert metrics.foot_sliding(p) < 1e-4
        # The pelvis really moves (weight shift, sway), so the feet are held by the legs' IK.
        assert np.ptp(motion.trans[:, 0]) > 0.005
        np.testing.assert_allclose(p[:, J["pelvis"]], motion.trans + default_rest_joints()[0], atol=1e-6)


def test_rest_pose_hangs_the_arms_beside_the_thighs(rest):
    """Rotation conventions checked with forward kinematics: a silent clip keeps the hands at rest,
    below the shoulders, beside the hips, palms toward the thighs."""
    motion = gestures.synthesize(np.zeros(16000 * 3), styles.get_style("avery"), seed=0)
    p, _ = forward_kinematics(motion.poses.astype(np.float64), motion.trans, rest)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        wrist, shoulder = p[:, J[f"{side}_wrist"]], p[:, J[f"{side}_shoulder"]]
        assert (shoulder[:, 1] - wrist[:, 1]).min() > 0.4  # hanging down
        assert (sign * wrist[:, 0]).min() > 0.15  # beside the body, not in front of it
        index, pinky = p[:, J[f"{side}_index1"]] - wrist, p[:, J[f"{side}_pinky1"]] - wrist
        palm = -sign * np.cross(index, pinky)
        palm /= np.linalg.norm(palm, axis=-1, keepdims=True)
        assert (-sign * palm[:, 0]).mean() > 0.6  # facing the body's midline


def _style_with(kind: str, hand: str) -> styles.Style:
    handedness = {"left": (0.0, 1.0, 0.0), "right": (1.0, 0.0, 0.0)}[hand]
    return dataclasses.replace(styles.get_style("carmen"), repertoire={kind: 1.0}, handedness=handedness,
                               rest_phrase_share=0.0)


@pytest.mark.parametrize("hand", ["left", "right"])
def test_gesture_shapes(speeches, rest, hand):
    """At stroke apexes: open palm faces up with extended fingers; point extends only the index;
    precision grip brings thumb and index tips together; all in front of the torso."""
    for kind in ("open_palm", "point", "precision"):
        motion, units, _ = gestures.synthesize_with_plan(speeches[0], _style_with(kind, hand), seed=3)
        p, _ = forward_kinematics(motion.poses.astype(np.float64), motion.trans, rest)
        frames = [int(round(a * 30)) for u in units for a in u.apexes]
        assert frames
        sign = 1.0 if hand == "left" else -1.0
        wrist = p[frames, J[f"{hand}_wrist"]]
        assert (wrist[:, 2] - p[frames, J["spine3"], 2]).min() > 0.15  # in front of the torso
        tip = {f: np.linalg.norm(p[frames, J[f"{hand}_{f}3"]] - wrist, axis=-1) for f in ("index", "middle", "ring", "pinky")}
        if kind == "open_palm":
            palm = -sign * np.cross(p[frames, J[f"{hand}_index1"]] - wrist, p[frames, J[f"{hand}_pinky1"]] - wrist)
            palm /= np.linalg.norm(palm, axis=-1, keepdims=True)
            assert palm[:, 1].mean() > 0.5, palm
            assert min(t.mean() for t in tip.values()) > 0.13
        elif kind == "point":
            assert tip["index"].mean() > 0.14 and max(tip[f].mean() for f in ("middle", "ring", "pinky")) < 0.11
        else:
            tips = p[frames, J[f"{hand}_thumb3"]] - p[frames, J[f"{hand}_index3"]]
            assert np.linalg.norm(tips, axis=-1).mean() < 0.04


# ----------------------------------------------------------------------------- timing and styles
def _stroke_ends(p: np.ndarray) -> np.ndarray:
    """Times where a hand, after a fast movement (> 0.45 m/s), reaches a speed minimum while still
    moving (> 4 cm/s): the end of a stroke as the BC metric sees a motion beat (order 7 minima)."""
    out = []
    for joint in (J["left_wrist"], J["right_wrist"]):
        speed = np.linalg.norm(np.gradient(p[:, joint], axis=0), axis=1) * 30
        for i in argrelextrema(speed, np.less, order=7)[0]:
            if speed[i] > 0.04 and speed[max(0, i - 9): i].max(initial=0.0) > 0.45:
                out.append(i / 30)
    return np.array(sorted(out))


def test_strokes_land_on_stressed_syllables(clips):
    """Stroke ends found in the motion lie much closer to stressed syllable onsets (found in the
    audio) than the same stroke ends do to those onsets shifted in time (chance)."""
    rng = np.random.default_rng(0)
    own, chance = [], []
    for motion, _, pro, p, _ in _all(clips):
        ends = _stroke_ends(p)
        stressed = np.array([s.onset for s in pro.syllables if s.stress > 0.4])
        if len(ends) == 0:
            continue
        own.append(np.abs(ends[:, None] - stressed[None]).min(axis=1))
        for _ in range(10):
            shifted = (stressed + rng.uniform(0.4, 3.0)) % motion.duration
            chance.append(np.abs(ends[:, None] - shifted[None]).min(axis=1))
    own, chance = np.concatenate(own), np.concatenate(chance)
    assert len(own) > 20
    assert np.mean(own) < 0.6 * np.mean(chance), (np.mean(own), np.mean(chance))
    assert np.median(own) < 0.05


def test_planned_apexes_are_syllable_onsets_and_speed_minima(clips):
    for motion, units, pro, p, _ in _all(clips):
        onsets = np.array([s.onset for s in pro.syllables])
        for unit in units:
            for apex in unit.apexes:
                assert np.abs(onsets - apex).min() < 1e-9
                side = unit.hands[0]
                speed = np.linalg.norm(np.gradient(p[:, J[f"{side}_wrist"]], axis=0), axis=1) * 30
                # Within a frame or two of the apex the hand slows to a dip after the fast stroke,
                # still moving (central differences put a sharp stop's minimum one frame late).
                i = int(round(apex * 30))
                j = i - 2 + int(np.argmin(speed[i - 2: i + 3]))
                assert 0.02 < speed[j] < 0.5 * speed[j - 6: j - 1].max(), (apex, speed[i - 8: i + 9])


def test_apexes_derived_from_the_motion_mostly_coincide_with_the_planned_ones(clips):
    """What ``metrics.derive_stroke_apexes`` finds in data without the planned apexes (BEAT2)."""
    hits, planned_count, derived_count, near = 0, 0, 0, 0
    for motion, units, _, p, _ in _all(clips):
        planned = np.rint(np.array([a for u in units for a in u.apexes]) * 30).astype(int)
        derived = np.flatnonzero(metrics.derive_stroke_apexes(p))
        if len(planned) and len(derived):
            hits += int((np.abs(planned[:, None] - derived[None]).min(axis=1) <= 3).sum())  # within 0.1 s
            near += int((np.abs(derived[:, None] - planned[None]).min(axis=1) <= 3).sum())
        planned_count += len(planned)
        derived_count += len(derived)
    assert planned_count > 40
    # On a 0.4 h corpus: 88 % of planned apexes found within 0.1 s, 80 % of the found ones planned.
    assert hits / planned_count > 0.75, (hits, planned_count)
    assert near / derived_count > 0.65, (near, derived_count)


def _style_stats(per_style) -> dict[str, float]:
    speed, height, rate, left, right = [], [], [], [], []
    for motion, _, _, p, _ in per_style:
        wrists = p[:, [J["left_wrist"], J["right_wrist"]]]
        s = np.linalg.norm(np.gradient(wrists, axis=0), axis=-1) * 30
        speed.append(s.mean())
        left.append(s[:, 0].mean())
        right.append(s[:, 1].mean())
        height.append((wrists[..., 1].max(axis=1) - p[:, J["pelvis"], 1]).mean())
        rate.append(len(_stroke_ends(p)) / motion.duration)
    return {"speed": np.mean(speed), "height": np.mean(height), "rate": np.mean(rate),
            "left_share": np.sum(left) / (np.sum(left) + np.sum(right))}


def test_styles_differ_measurably(clips):
    stats = {name: _style_stats(per_style) for name, per_style in clips.items()}
    names = list(stats)
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            sa, sb = stats[names[a]], stats[names[b]]
            differences = [abs(sa[k] - sb[k]) / max(abs(sa[k]), abs(sb[k]), 1e-9) for k in ("speed", "height", "rate")]
            assert max(differences) > 0.25, (names[a], names[b], sa, sb)
    # What each style is described as.
    assert max(stats, key=lambda n: stats[n]["speed"]) == "bodhi"
    assert max(stats, key=lambda n: stats[n]["rate"]) == "bodhi"
    assert min(stats, key=lambda n: stats[n]["height"]) == "dmitri"
    assert stats["carmen"]["left_share"] > 0.55 > stats["avery"]["left_share"]


def test_deterministic_per_seed(speeches):
    style = styles.get_style("bodhi")
    a = gestures.synthesize(speeches[1], style, seed=7)
    b = gestures.synthesize(speeches[1], style, seed=7)
    c = gestures.synthesize(speeches[1], style, seed=8)
    np.testing.assert_array_equal(a.poses, b.poses)
    np.testing.assert_array_equal(a.trans, b.trans)
    np.testing.assert_array_equal(a.expressions, b.expressions)
    assert np.abs(a.poses - c.poses).max() > 0.1


def test_face_follows_speech(clips):
    """Jaw opening follows loudness, blinks happen, head nods come near pitch accents."""
    for motion, _, pro, p, _ in clips["bodhi"]:
        t = np.arange(motion.num_frames) / 30
        loud = pro.sample(pro.envelope_db, t)
        jaw = motion.poses[:, J["jaw"], 0]
        assert np.corrcoef(jaw, loud)[0, 1] > 0.5
        assert np.abs(motion.expressions).max() < 3.0
        assert (motion.expressions[:, 5] > 0.9).any()  # a blink (assumed eyelid coefficient)
        assert np.abs(motion.expressions[:, 10:]).max() == 0.0


@pytest.mark.parametrize("room_noise", [0.0, 3e-4])
def test_the_body_rests_in_a_silent_gap(speeches, rest, room_noise):
    """6 s of silence (exact zeros, or room noise near -70 dBFS) between two utterances: no stroke
    in it, the wrists nearly still (under 0.15x their speed in speech, 1 s margins left out), the
    hands down at rest, the jaw closed."""
    gap = np.random.default_rng(0).normal(0.0, room_noise, 6 * 16000) if room_noise else np.zeros(6 * 16000)
    first = speeches[0][: len(speeches[0]) // 533 * 533]  # whole frames, so the gap starts on one
    wave = np.concatenate([first, gap, speeches[1]])
    start = len(first) * 30 // 16000
    frames = (start, start + 180)
    for style, seed in ((style, seed) for style in styles.STYLES for seed in range(3)):
        motion, units, _ = gestures.synthesize_with_plan(wave, style, seed=seed)
        positions, _ = forward_kinematics(motion.poses.astype(np.float64), motion.trans, rest)
        assert metrics.rest_in_silence(positions, frames) < 0.15, (style.name, seed)
        inner = slice(frames[0] + 30, frames[1] - 30)
        assert not [a for u in units for a in u.apexes if frames[0] / 30 < a < frames[1] / 30], style.name
        for side in ("left", "right"):
            drop = positions[inner, J["pelvis"], 1] - positions[inner, J[f"{side}_wrist"], 1]
            assert drop.min() > 0.0, style.name  # the wrists hang below the pelvis
        assert motion.poses[inner, J["jaw"], 0].max() < 0.03, style.name


def test_gesture_units_end_at_pauses_and_drop_the_hands_after_a_while():
    """A long run of strokes makes units of at most the style's ``unit_seconds``, each followed by a
    stroke-free break for the hands to go down; a pause always ends a unit."""
    style = styles.get_style("carmen")
    strokes = [(1.0 + 0.6 * k, 0.8) for k in range(30)]
    units = gestures.group_units(strokes, style, np.random.default_rng(0))
    assert len(units) > 2
    for a, b in zip(units[:-1], units[1:]):
        assert a.apexes[-1] - a.apexes[0] <= style.unit_seconds
        assert b.apexes[0] - a.apexes[-1] >= gestures.UNIT_BREAK * style.tempo
    joined = gestures.group_units([(1.0, 0.8), (1.9, 0.8)], style, np.random.default_rng(0))
    split = gestures.group_units([(1.0, 0.8), (1.9, 0.8)], style, np.random.default_rng(0), [(1.2, 1.7)])
    assert [len(u.apexes) for u in joined] == [2] and [len(u.apexes) for u in split] == [1, 1]


def test_carmen_does_not_hold_her_arms_raised_and_still(clips):
    """Frozen raised arms (``metrics.frozen_arms``) stay rare in every style: on these two clips
    carmen held an arm raised and still on 11.6 % of the frames before gesture units dropped the
    hands after her ``unit_seconds``, 5.1 % after."""
    for name, per_style in clips.items():
        assert metrics.frozen_arms([c[3] for c in per_style]) < 0.07, name


def test_bad_input_is_refused():
    style = styles.get_style("avery")
    with pytest.raises(ValueError, match="mono"):
        gestures.synthesize(np.zeros((16000, 2)), style)
    with pytest.raises(ValueError, match="16000 Hz"):
        gestures.synthesize(np.zeros(22050), style, sample_rate=22050)
    with pytest.raises(ValueError, match="too short"):
        gestures.synthesize(np.zeros(100), style)
    with pytest.raises(ValueError, match="unknown style"):
        styles.get_style("nobody")


# ----------------------------------------------------------------------------- parts
def test_pitch_tracker_on_a_harmonic_tone():
    t = np.arange(16000) / 16000
    for f0 in (110.0, 180.0, 260.0):
        tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 0.3
        pro = prosody.analyze(tone)
        voiced = pro.f0[pro.voiced]
        assert len(voiced) > 50
        assert abs(np.median(voiced) - f0) / f0 < 0.02


def test_prosody_on_espeak_speech(tmp_path_factory):
    low = _speech(tmp_path_factory, TEXTS[1], "en-us", 150, pitch=20)
    high = _speech(tmp_path_factory, TEXTS[1], "en-us", 150, pitch=80)
    a, b = prosody.analyze(low), prosody.analyze(high)
    assert np.median(b.f0[b.voiced]) > 1.1 * np.median(a.f0[a.voiced])
    # About one nucleus per syllable (the text has about 50 syllables), accents a subset.
    assert 30 <= len(a.syllables) <= 70
    assert 3 <= len(a.accents) < len(a.syllables)
    assert len(a.phrases) >= 3  # pauses at the sentence ends
    assert all(s.onset <= s.peak for s in a.syllables)


def test_two_bone_ik_reaches_targets_exactly(rest):
    rng = np.random.default_rng(0)
    shoulder, elbow, wrist = rest[J["left_shoulder"]], rest[J["left_elbow"]], rest[J["left_wrist"]]
    upper, lower = elbow - shoulder, wrist - elbow
    n = 200
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    target = shoulder + direction * rng.uniform(0.15, 0.48, (n, 1))
    parent = axis_angle_to_matrix(rng.normal(0, 0.2, (n, 3)))
    pole = np.tile([0.3, -1.0, -0.3], (n, 1))
    hinge = np.cross(upper / np.linalg.norm(upper), [0.0, 0.0, 1.0])
    root_local, mid_local = ik.solve_two_bone(np.tile(shoulder, (n, 1)), target, parent, upper, lower, hinge, pole, (0.0, 2.6))
    end = shoulder + np.einsum("nij,j->ni", parent @ root_local, upper) + np.einsum(
        "nij,j->ni", parent @ root_local @ mid_local, lower)
    np.testing.assert_allclose(end, target, atol=1e-9)


def test_text_held_out_split_is_disjoint():
    train = set(text.sentences(np.random.default_rng(1), 3000, held_out=False))
    held = set(text.sentences(np.random.default_rng(2), 500, held_out=True))
    assert not train & held
    assert all(text.is_held_out(s) for s in held) and not any(text.is_held_out(s) for s in train)
    assert len(train) > 2500  # varied, few repeats
    for s in list(train)[:200]:
        assert s[0].isupper() and s[-1] in ".?!" and "  " not in s


def test_preview_strip(clips, tmp_path):
    from gestura.training.synth.preview import render_strip

    motion = clips["bodhi"][0][0]
    path = render_strip(motion, tmp_path / "strip.png", start=1.0, seconds=3.0, per_second=2.0, title="bodhi")
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.shape[1] > 500 and image.shape[0] > 400
    assert image[..., :3].std() > 0.05  # something is drawn


def test_preview_gif_plays_in_real_time(tmp_path):
    from PIL import Image

    from gestura.rigs.motion import Motion
    from gestura.training.synth.preview import render_gif

    motion = Motion.rest(90)  # 3 s at 30 fps, the left arm rising
    motion.poses[:, 16, 2] = np.linspace(0.0, 1.5, 90)
    path = render_gif(motion, tmp_path / "clip.gif", start=1.0, seconds=2.0)
    gif = Image.open(path)
    delays = []
    for index in range(gif.n_frames):
        gif.seek(index)
        delays.append(gif.info["duration"])
    # Before: 60 ms per image (1/15 s truncated to whole centiseconds), 1.8 s for 2 s of motion.
    assert len(delays) == 30 and sum(delays) == pytest.approx(2000, rel=0.01)


@pytest.mark.parametrize("motion_fps, frames, seconds", [(30, np.arange(0, 300, 2), 10.0), (30, np.arange(0, 300), 10.0),
                                                         (24, np.arange(0, 96, 2), 4.0), (25, np.arange(10, 35, 2), 1.0)])
def test_gif_delays_add_up_to_the_clip(motion_fps, frames, seconds):
    from gestura.training.synth.preview import gif_delays

    end = frames[0] + int(round(seconds * motion_fps))
    delays = np.array(gif_delays(frames, end, motion_fps))
    assert (delays % 10 == 0).all()  # GIF stores whole centiseconds
    assert delays.sum() == pytest.approx(1000 * seconds, abs=10)
    # Every image starts within half a centisecond of its frame's time: no drift along the clip.
    starts = np.concatenate([[0], np.cumsum(delays)[:-1]])
    assert np.abs(starts - 1000 * (frames - frames[0]) / motion_fps).max() <= 5.0 + 1e-9
