"""The procedural co-speech gesture synthesizer: speech waveform + style -> SMPL-X Motion at 30 fps.

How a clip is made:
1. ``prosody.analyze`` finds phrases, syllable nuclei with their onsets and stress, pitch accents.
2. Planning: in each phrase the most stressed syllables become stroke times (apexes), at the
   style's rate and no closer than its minimum gap; strokes close in time form a gesture unit
   with one gesture type (beat, open palm, point, precision grip, two-handed) and one hand choice.
   A unit lasts at most the style's ``unit_seconds`` and ends at every pause of ``REST_PAUSE`` or more;
   in such a pause the body rests (hands at rest, their drift and the weight shifts calmed).
3. Each unit becomes arm keyframes in gesture phases: preparation (rest -> a via pose above and
   behind the apex), stroke (fast, ending at the apex exactly on the syllable onset, where the hand
   stops: a speed minimum, the "motion beat"), post-stroke hold, then the next stroke or the
   retraction to rest. Keys are joined by quintic curves (bounded jerk, no jitter).
4. Arm keys are hand positions in the chest's frame, solved to shoulder and elbow rotations by
   exact IK; forearm roll, wrist and the articulated hand shape come with each key.
5. Body: weight shifts with planted feet, breathing, posture, a torso that leans into gestures;
   head nods on pitch accents; jaw following loudness; blinks and brows (``face``).

Positions of a hand are (outward, up, forward) metres from the shoulder's rest position in the
chest (spine3) frame, the same for both arms (mirrored in x for the right arm).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...rigs.motion import Motion
from ...rigs.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from ...rigs.skeleton import FPS, JOINT_INDEX, NUM_JOINTS, PARENTS
from . import body, face
from .curves import bumps, key_curve, smooth_noise
from .hands import FLEX_AXIS, RADIAL_AXIS, hand_pose, mirror
from .ik import axis_rotation, solve_two_bone
from .prosody import SAMPLE_RATE, Prosody, analyze
from .styles import GESTURE_TYPES, Style, lively, liveliness

J = JOINT_INDEX
SIDES = ("left", "right")
SIDE_SIGN = {"left": 1.0, "right": -1.0}
MIRROR_X = {"left": np.array([1.0, 1.0, 1.0]), "right": np.array([-1.0, 1.0, 1.0])}

# Arm key layout: position (3), elbow pole (3), supination (palm up +), wrist flexion, wrist
# radial deviation, then the hand's 15 joints x 3 axis-angle (left-hand convention).
POS, POLE, SUP, FLEX, DEV, HAND = slice(0, 3), slice(3, 6), 6, 7, 8, slice(9, 54)
KEY_DIMS = 54

REST_POS = np.array([0.05, -0.485, 0.07])
REST_POLE = np.array([0.35, 0.0, -1.0])  # a hanging arm's elbow points back
GESTURE_POLE = np.array([0.55, -1.0, -0.35])  # a raised forearm's elbow points down and out
NEUTRAL = np.array([0.0, -0.36, 0.2])  # what gesture amplitude scales toward
CHEST_FRONT = 0.2  # hands inside the torso's width stay this far forward of the shoulder
MIN_STROKE = 0.07  # m from preparation to apex
MAX_SEGMENT_SPEED = 0.9  # m/s, average over one key-to-key segment (peaks are about twice that)
APEX_SPEED = 0.12  # m/s a hand still moves at a stroke's apex (times the style's amplitude)
# A pause in speech at least REST_PAUSE s long ends a gesture unit, and in it the body rests: the
# hands retract to rest, their drift and the weight shifts calm down (idle breathing and sway go on).
REST_PAUSE = 1.0
REST_RAMP = 0.6  # s over which the body settles at a pause's start and wakes before its end
REST_DRIFT = 0.2  # share of the hands' drift left while resting
# Strokes closer than UNIT_BREAK x tempo after a unit of the style's ``unit_seconds`` are skipped,
# so the hands drop to rest between units instead of staying raised and still for many seconds.
UNIT_BREAK = 2.0
# A pitch-accented syllable's score for carrying a stroke is its stress plus this much.
ACCENT_BONUS = 0.25


@dataclass
class Pose:
    """One arm keyframe before it is flattened into a key vector."""
    pos: np.ndarray
    pole: np.ndarray
    sup: float
    flex: float
    dev: float
    shape: str
    curl: float = 0.0

    def vector(self, rest: np.ndarray) -> np.ndarray:
        v = np.zeros(KEY_DIMS)
        v[POS], v[POLE] = self.pos, self.pole
        v[SUP], v[FLEX], v[DEV] = self.sup, self.flex, self.dev
        v[HAND] = hand_pose(self.shape, rest, curl=self.curl).reshape(-1)
        return v


def rest_pose(rng: np.random.Generator) -> Pose:
    return Pose(REST_POS + rng.normal(0, 0.008, 3), REST_POLE, 0.0, 0.08, 0.0, "relaxed", rng.normal(0, 0.05))


@dataclass
class Unit:
    """A gesture unit: one gesture type and hand choice over one or more strokes."""
    kind: str
    hands: tuple[str, ...]
    apexes: list[float]
    stresses: list[float]


# ----------------------------------------------------------------------------- planning
def choose_strokes(prosody: Prosody, style: Style, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(apex time, stress) of every stroke, in time order."""
    accented = {id(a) for a in prosody.accents}
    strokes = []
    for start, end in prosody.phrases:
        length = end - start
        if rng.random() < style.rest_phrase_share + (0.3 if length < 0.8 else 0.0):
            continue
        inside = [s for s in prosody.syllables if start - 0.05 <= s.onset <= end and s.onset > 0.7]
        if not inside:
            continue
        target = max(1, int(round(style.stroke_rate * length * rng.uniform(0.75, 1.25))))
        score = np.array([s.stress + (ACCENT_BONUS if id(s) in accented else 0.0) + rng.uniform(0, 0.15) for s in inside])
        chosen: list[float] = []
        for k in np.argsort(-score):
            if len(chosen) >= target or score[k] < 0.3:
                break
            onset = inside[k].onset
            if all(abs(onset - c) >= style.min_stroke_gap for c in chosen) and all(
                abs(onset - c) >= style.min_stroke_gap for c, _ in strokes[-3:]
            ):
                chosen.append(onset)
                strokes.append((onset, float(inside[k].stress)))
    strokes.sort()
    return strokes


def pauses(prosody: Prosody, min_length: float = REST_PAUSE) -> list[tuple[float, float]]:
    """(start, end) seconds of the stretches without speech at least ``min_length`` long: between
    phrases, and before the first and after the last (the whole clip when nothing is said)."""
    edges = [0.0, *(x for phrase in prosody.phrases for x in phrase), prosody.duration]
    return [(a, b) for a, b in zip(edges[0::2], edges[1::2]) if b - a >= min_length]


def rest_weight(t: np.ndarray, rests: list[tuple[float, float]], ramp: float = REST_RAMP) -> np.ndarray:
    """(N,) 0..1: 1 inside the pauses ``rests``, easing in over ``ramp`` s after a pause starts and
    out over ``ramp`` s before it ends (a pause shorter than 2 x ``ramp`` never reaches 1)."""
    w = np.zeros(len(t))
    for a, b in rests:
        w = np.maximum(w, np.clip(np.minimum(t - a, b - t) / ramp, 0.0, 1.0))
    return w * w * (3 - 2 * w)


def group_units(strokes: list[tuple[float, float]], style: Style, rng: np.random.Generator,
                rests: list[tuple[float, float]] = ()) -> list[Unit]:
    """Strokes grouped into gesture units. A unit ends at a pause of ``rests`` and after 6 strokes
    or the style's ``unit_seconds``; after a unit that long, strokes within ``UNIT_BREAK`` x tempo
    are skipped."""
    units: list[Unit] = []
    unit_gap = 1.4 * style.tempo
    kinds = list(style.repertoire)
    weights = np.array([style.repertoire[k] for k in kinds])
    for apex, stress in strokes:
        if units:
            last = units[-1].apexes[-1]
            paused = any(last <= a and b <= apex for a, b in rests)
            long = apex - units[-1].apexes[0] > style.unit_seconds
            if not paused and not long and len(units[-1].apexes) < 6 and apex - last <= unit_gap:
                units[-1].apexes.append(apex)
                units[-1].stresses.append(stress)
                continue
            if long and not paused and apex - last < UNIT_BREAK * style.tempo:
                continue  # the hands go down to rest before the next unit
        kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
        hand = ("right", "left", "both")[rng.choice(3, p=np.array(style.handedness) / sum(style.handedness))]
        dominant = "right" if style.handedness[0] >= style.handedness[1] else "left"
        if kind == "two_handed" or (hand == "both" and kind in ("beat", "open_palm")):
            hands = SIDES
        elif hand == "both":
            hands = (dominant,)
        else:
            hands = (hand,)
        units.append(Unit(kind, hands, [apex], [stress]))
    return units


# ----------------------------------------------------------------------------- gesture poses
def _keep_off_body(p: np.ndarray, reach: float) -> np.ndarray:
    """Keep a hand position reachable and, inside the torso's width, in front of the chest."""
    p = p.copy()
    if p[0] < 0.0:
        p[2] = max(p[2], CHEST_FRONT)
    distance = np.linalg.norm(p)
    if distance > 0.96 * reach:
        p *= 0.96 * reach / distance
    return p


def _place(pos: np.ndarray, style: Style, reach: float) -> np.ndarray:
    """Scale by the style's amplitude, shift by its gesture space, keep reachable and off the body."""
    p = NEUTRAL + style.amplitude * (pos - NEUTRAL) + np.array([style.hand_width, style.hand_height, 0.0])
    return _keep_off_body(p, reach)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def unit_poses(unit: Unit, style: Style, rng: np.random.Generator, reach: float
               ) -> list[tuple[Pose, Pose, np.ndarray]]:
    """(preparation, apex, glide direction) for each stroke of ``unit``, for one arm (left-side
    convention). After the apex the hand glides on along the direction instead of freezing."""
    amp = style.amplitude
    jitter = rng.normal(0, 0.025, 3) * amp
    out = []
    for k, _ in enumerate(unit.apexes):
        wobble = rng.normal(0, 0.012, 3) * amp
        curl = rng.normal(0, 0.06)
        if unit.kind == "beat":
            base = np.array([-0.01, -0.3, 0.3]) + jitter + wobble
            apex = Pose(base + np.array([0, -0.035, 0.015]) * amp, GESTURE_POLE, 0.35, 0.12, 0.0, "baton", curl)
            prep = Pose(base + np.array([0, 0.07, -0.02]) * amp, GESTURE_POLE, 0.3, -0.05, 0.0, "baton", curl)
            glide = _unit([1.0 if k % 2 == 0 else -1.0, 0.3, 0.3])
        elif unit.kind == "open_palm":
            base = np.array([0.07, -0.27, 0.32]) + jitter + wobble
            apex = Pose(base, GESTURE_POLE, 1.3, -0.2, 0.0, "open", curl)
            if k == 0:
                prep = Pose(np.array([-0.05, -0.3, 0.24]) + jitter, GESTURE_POLE, 0.3, 0.1, 0.0, "relaxed", curl)
            else:
                prep = Pose(base + np.array([-0.02, 0.05, -0.03]) * amp, GESTURE_POLE, 1.1, -0.05, 0.0, "open", curl)
            glide = _unit([1.0, 0.1, 0.4])
        elif unit.kind == "point":
            base = np.array([0.0, -0.13, 0.4]) + jitter + wobble
            apex = Pose(base, GESTURE_POLE, -0.45, -0.1, 0.1, "point", curl)
            back = np.array([-0.03, -0.2, 0.22]) + jitter if k == 0 else base + np.array([0, 0.03, -0.06]) * amp
            prep = Pose(back, GESTURE_POLE, -0.3, 0.0, 0.05, "point", curl)
            glide = _unit([0.3, -0.2, 1.0])
        elif unit.kind == "precision":
            base = np.array([-0.09, -0.22, 0.27]) + jitter + wobble
            apex = Pose(base + np.array([0, -0.03, 0.02]) * amp, GESTURE_POLE, 0.15, 0.1, 0.25, "precision", curl)
            prep = Pose(base + np.array([0.01, 0.05, -0.02]) * amp, GESTURE_POLE, 0.1, 0.0, 0.25, "precision", curl)
            glide = _unit([0.6, 0.2, 0.5])
        elif unit.kind == "two_handed":
            base = np.array([-0.01, -0.26, 0.3]) + jitter * np.array([0.5, 1, 1]) + wobble
            palms_up = rng.random() < 0.4 if k == 0 else out[0][1].sup > 0.5
            sup = 1.0 if palms_up else 0.0
            apex = Pose(base + np.array([0.04, -0.03, 0.02]) * amp, GESTURE_POLE, sup, -0.1, 0.0, "open", curl)
            prep = Pose(base + np.array([-0.03, 0.05, -0.03]) * amp, GESTURE_POLE, sup * 0.8, 0.0, 0.0, "open", curl)
            glide = _unit([1.0, -0.1, 0.2])
        else:
            raise ValueError(f"unknown gesture type '{unit.kind}': choose one of {', '.join(GESTURE_TYPES)}")
        apex.pos = _place(apex.pos, style, reach)
        prep.pos = _place(prep.pos, style, reach)
        # However small the style, a stroke travels far enough to be a visible beat.
        travel = prep.pos - apex.pos
        if np.linalg.norm(travel) < MIN_STROKE:
            direction = travel if np.linalg.norm(travel) > 1e-6 else np.array([0.0, 1.0, -0.3])
            prep.pos = _keep_off_body(apex.pos + MIN_STROKE * _unit(direction), reach)
        out.append((prep, apex, glide))
    return out


@dataclass
class Key:
    time: float
    value: np.ndarray | None  # None: filled in later (the pose the arm leaves rest from)
    via: bool
    kind: str  # rest / leave / prep / apex / glide
    velocity: np.ndarray | None = None  # explicit position velocity (apex keys)


def arm_keys(units: list[Unit], side: str, style: Style, rng: np.random.Generator, rest: np.ndarray,
             reach: float, duration: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keyframes (times, vectors, via flags, velocities with NaN = automatic) of one arm.

    A stroke ends at its apex still moving (speed ``APEX_SPEED`` x amplitude) along its glide
    direction, and the hand glides on for a few tenths of a second before it stops (the post-stroke
    hold of a real speaker is never frozen). So the stroke's end is a clear local minimum of the
    hand's speed that is not zero: what the field's BC metric counts as a motion beat.
    """
    keys: list[Key] = [Key(0.0, rest_pose(rng).vector(rest), False, "rest")]
    apex_speed = APEX_SPEED * max(style.amplitude, 0.75)
    for unit in units:
        if side not in unit.hands:
            continue
        poses = unit_poses(unit, style, rng, reach)
        stroke = 0.2 * style.tempo * rng.uniform(0.85, 1.15)
        prepare = 0.45 * style.tempo * rng.uniform(0.85, 1.2)
        prepare = max(prepare, np.linalg.norm(poses[0][0].pos - REST_POS) / (0.8 * MAX_SEGMENT_SPEED))
        first_gap = unit.apexes[1] - unit.apexes[0] if len(unit.apexes) > 1 else np.inf
        first_prep = unit.apexes[0] - min(stroke, 0.45 * first_gap)
        leave = first_prep - prepare
        # The previous unit's glide and retraction give way to this unit's preparation: if the
        # hand has no time to reach rest, it goes from where it is straight into the new gesture.
        while len(keys) > 1 and keys[-1].kind in ("rest", "glide") and keys[-1].time > leave - 0.1:
            keys.pop()
        if keys[-1].kind == "rest" and leave - keys[-1].time >= 0.15:
            keys.append(Key(leave, keys[-1].value.copy(), False, "leave"))
        for k, (apex_time, (prep, apex, glide)) in enumerate(zip(unit.apexes, poses)):
            gap = apex_time - unit.apexes[k - 1] if k else np.inf
            prep_time = first_prep if k == 0 else apex_time - min(stroke, 0.45 * gap)
            if prep_time - keys[-1].time >= 0.08:
                keys.append(Key(prep_time, prep.vector(rest), True, "prep"))
            velocity = np.full(KEY_DIMS, np.nan)
            velocity[POS] = apex_speed * glide
            velocity[POS.stop:] = 0.0
            keys.append(Key(apex_time, apex.vector(rest), True, "apex", velocity))
            next_gap = unit.apexes[k + 1] - apex_time if k + 1 < len(unit.apexes) else np.inf
            room = next_gap - min(stroke, 0.45 * next_gap) - 0.1  # keys stay >= 0.08 s apart
            glide_time = min((0.3 + style.hold) * rng.uniform(0.85, 1.15), room)
            if glide_time >= 0.28:
                held = apex.vector(rest)
                held[POS] = _keep_off_body(apex.pos + 1.6 * apex_speed * glide_time * glide, reach)
                keys.append(Key(apex_time + glide_time, held, False, "glide"))
        retract = 0.55 * style.tempo * rng.uniform(0.85, 1.2)
        keys.append(Key(keys[-1].time + retract, rest_pose(rng).vector(rest), False, "rest"))

    kept = _limit_speed([k for k in keys if k.time <= duration + 1.0])
    times = np.array([k.time for k in kept])
    if np.any(np.diff(times) < 0.079):
        raise AssertionError(f"gesture keys closer than 0.08 s: {np.round(times, 3)}")  # a planning bug
    velocities = np.array([k.velocity if k.velocity is not None else np.full(KEY_DIMS, np.nan) for k in kept])
    return (np.array([k.time for k in kept]), np.array([k.value for k in kept]),
            np.array([k.via for k in kept]), velocities)


def _limit_speed(keys: list[Key], limit: float = MAX_SEGMENT_SPEED) -> list[Key]:
    """Drop optional keys (glides, preparations, rests) where the hand would have to cover a
    segment other than a stroke faster than ``limit`` m/s on average - a jump between two gestures
    with no time left."""
    keys = list(keys)
    changed = True
    while changed:
        changed = False
        for i in range(1, len(keys)):
            a, b = keys[i - 1], keys[i]
            if b.kind == "apex":  # strokes are meant to be fast
                continue
            if np.linalg.norm(b.value[POS] - a.value[POS]) / (b.time - a.time) <= limit:
                continue
            if a.kind == "leave" and i - 1 > 0:
                # Leave rest earlier, so the preparation has the time it needs.
                earliest = keys[i - 2].time + 0.08
                wanted = b.time - np.linalg.norm(b.value[POS] - a.value[POS]) / limit
                if wanted >= earliest:
                    keys[i - 1] = Key(wanted, a.value, a.via, a.kind, a.velocity)
                else:
                    del keys[i - 1]
            elif a.kind != "apex" and i - 1 > 0:
                del keys[i - 1]
            elif b.kind in ("glide", "rest", "leave"):
                del keys[i]
            else:  # apex -> the next stroke's preparation: both are needed, keep the fast move
                continue
            changed = True
            break
    return keys


# ----------------------------------------------------------------------------- rendering
def _emphasis(units: list[Unit], side: str, t: np.ndarray, style: Style) -> np.ndarray:
    """(N,) smooth bumps peaking at this arm's stroke apexes, bigger for stressed syllables."""
    times = [a for u in units if side in u.hands for a in u.apexes]
    heights = [style.amplitude * (0.5 + 0.5 * s) for u in units if side in u.hands for s in u.stresses]
    return bumps(t, np.array(times), np.array(heights), width=0.5)


def _globals(local: np.ndarray, joint: int, cache: dict) -> np.ndarray:
    if joint not in cache:
        parent = PARENTS[joint]
        cache[joint] = local[:, joint] if parent < 0 else _globals(local, parent, cache) @ local[:, joint]
    return cache[joint]


def _position(local: np.ndarray, trans: np.ndarray, rest: np.ndarray, joint: int, cache: dict) -> np.ndarray:
    chain = []
    j = joint
    while j >= 0:
        chain.append(j)
        j = PARENTS[j]
    pos = rest[0] + trans
    for child in reversed(chain[:-1]):
        parent = PARENTS[child]
        pos = pos + np.einsum("nij,j->ni", _globals(local, parent, cache), rest[child] - rest[parent])
    return pos


def render_arm(side: str, params: np.ndarray, local: np.ndarray, trans: np.ndarray, rest: np.ndarray,
               style: Style, breath: np.ndarray, emphasis: np.ndarray) -> None:
    """Collar, shoulder, elbow, wrist and finger rotations of one arm from its key curve."""
    sign = SIDE_SIGN[side]
    m = MIRROR_X[side]
    collar, shoulder, elbow, wrist = (J[f"{side}_{n}"] for n in ("collar", "shoulder", "elbow", "wrist"))
    # Collar: the style's shoulder drop, a shrug when the hand is high, a little protraction when it
    # is forward, and breathing. Written for the left side as (0, -protraction, elevation).
    height = params[:, 1] - REST_POS[1]
    forward = params[:, 2] - REST_POS[2]
    elevation = -style.shoulder_drop + 0.2 * np.maximum(height - 0.15, 0.0) + 0.012 * breath + 0.04 * emphasis
    protraction = 0.15 * np.maximum(forward, 0.0)
    collar_aa = np.stack([np.zeros_like(elevation), -protraction, elevation], axis=1)
    local[:, collar] = axis_angle_to_matrix(collar_aa * (1.0 if side == "left" else np.array([1.0, -1.0, -1.0])))

    cache: dict = {}
    chest = _globals(local, J["spine3"], cache)
    chest_pos = _position(local, trans, rest, J["spine3"], cache)
    shoulder_offset = rest[shoulder] - rest[J["spine3"]]
    target = chest_pos + np.einsum("nij,nj->ni", chest, shoulder_offset + params[:, POS] * m)
    pole = np.einsum("nij,nj->ni", chest, params[:, POLE] * m)
    shoulder_pos = _position(local, trans, rest, shoulder, cache)
    upper, lower = rest[elbow] - rest[shoulder], rest[wrist] - rest[elbow]
    hinge = np.cross(upper / np.linalg.norm(upper), np.array([0.0, 0.0, 1.0]))
    # Palm up (supination) is a turn about the forearm of -angle on the left, +angle on the right;
    # 60 % of it is in the forearm (elbow joint), the rest at the wrist.
    roll = -sign * params[:, SUP]
    local[:, shoulder], local[:, elbow] = solve_two_bone(
        shoulder_pos, target, _globals(local, collar, cache), upper, lower, hinge, pole, (0.0, 2.5), 0.6 * roll
    )
    flex_axis = mirror(FLEX_AXIS) if side == "right" else FLEX_AXIS
    radial_axis = mirror(RADIAL_AXIS) if side == "right" else RADIAL_AXIS
    local[:, wrist] = (
        axis_rotation(lower, 0.4 * roll) @ axis_rotation(flex_axis, params[:, FLEX]) @ axis_rotation(radial_axis, params[:, DEV])
    )
    hand = params[:, HAND].reshape(len(params), 15, 3)
    if side == "right":
        hand = mirror(hand)
    first = J[f"{side}_index1"]
    local[:, first: first + 15] = axis_angle_to_matrix(hand)


def synthesize(wave: np.ndarray, style: Style, seed: int = 0, rest_joints: np.ndarray | None = None,
               sample_rate: int = SAMPLE_RATE, fps: float = FPS) -> Motion:
    """Gestures for mono speech ``wave`` (16 kHz) in ``style``; the same seed gives the same motion."""
    return synthesize_with_plan(wave, style, seed, rest_joints, sample_rate, fps)[0]


def synthesize_with_plan(wave: np.ndarray, style: Style, seed: int = 0, rest_joints: np.ndarray | None = None,
                         sample_rate: int = SAMPLE_RATE, fps: float = FPS) -> tuple[Motion, list[Unit], Prosody]:
    """``synthesize``, also returning the gesture units (stroke times) and the speech analysis. The
    style's energy follows the delivery of ``wave`` (``styles.lively``)."""
    if rest_joints is None:
        from ...rigs.rest_skeleton import default_rest_joints

        rest_joints = default_rest_joints()
    rest = np.asarray(rest_joints, np.float64)
    wave = np.asarray(wave)
    prosody = analyze(wave, sample_rate)
    style = lively(style, liveliness(wave, sample_rate))
    n = int(len(wave) * fps // sample_rate)
    if n < 2:
        raise ValueError(f"speech of {len(wave) / sample_rate:.3f} s is too short: give at least 0.1 s")
    t = np.arange(n) / fps
    rng = np.random.default_rng(seed)

    local = np.broadcast_to(np.eye(3), (n, NUM_JOINTS, 3, 3)).copy()
    rests = pauses(prosody)
    trans, roll = body.lower_body(t, style, rng, rest, local, rests)
    breath = body.breathing(t, rng)

    reach = float(np.linalg.norm(rest[J["left_elbow"]] - rest[J["left_shoulder"]])
                  + np.linalg.norm(rest[J["left_wrist"]] - rest[J["left_elbow"]]))
    units = group_units(choose_strokes(prosody, style, rng), style, rng, rests)
    params = {}
    drift = smooth_noise(rng, t, 1.6, 6, amplitude=0.006)
    drift *= 1.0 - (1.0 - REST_DRIFT) * rest_weight(t, rests)[:, None]
    for k, side in enumerate(SIDES):
        times, values, via, velocities = arm_keys(units, side, style, rng, rest, reach, t[-1])
        params[side] = key_curve(times, values, via, t, velocities=velocities)
        params[side][:, POS] += drift[:, 3 * k: 3 * k + 3]

    forward = {s: params[s][:, 2] - REST_POS[2] for s in SIDES}
    emphasis = {side: _emphasis(units, side, t, style) for side in SIDES}
    lean = body.spine(t, style, rng, local, roll, breath, 0.5 * (forward["left"] + forward["right"]),
                      forward["right"] - forward["left"], np.maximum(emphasis["left"], emphasis["right"]))
    nods = face.nod_signal(prosody, t, style, rng)
    body.neck_and_head(t, style, rng, local, lean, nods)
    for side in SIDES:
        render_arm(side, params[side], local, trans, rest, style, breath, emphasis[side])

    opening = face.mouth_opening(prosody, t)
    local[:, J["jaw"]] = axis_rotation(np.array([1.0, 0.0, 0.0]), face.jaw_angle(opening, rng))
    expressions = face.expressions(prosody, t, style, rng, opening)
    poses = matrix_to_axis_angle(local)
    return Motion(poses=poses, trans=trans, expressions=expressions, fps=fps), units, prosody
