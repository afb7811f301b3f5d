"""The synthetic corpus' speakers: each is a gesturing style the model learns as a speaker id.

Styles differ in what the issue asks the style control to change: how often the speaker gestures
(rate), how big (amplitude), how fast (tempo), with which hand (handedness), the gesture
repertoire, and posture. Voices are NOT tied to speakers (every speaker is spoken by every
espeak-ng voice), so the model has to read the style from the speaker id, not from the audio.

Within a style, the delivery sets the energy (``lively``): a fast, dynamic delivery gestures more
often, larger and quicker than a slow, even one, as people do, so that a model that infers style
from the voice (DiM-Gestor) has something to learn.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

GESTURE_TYPES = ("beat", "open_palm", "point", "precision", "two_handed")


@dataclass(frozen=True)
class Style:
    name: str
    speaker_id: int  # BEAT2-style leading number of file ids
    description: str
    # How often: strokes per second of speech aimed for, and the shortest gap between two strokes.
    stroke_rate: float
    min_stroke_gap: float
    # Share of phrases with no gesture at all (hands stay at rest).
    rest_phrase_share: float
    amplitude: float  # scales the distance of gesture positions from rest and beat excursions
    tempo: float  # duration scale of preparation, stroke and retraction (< 1 is faster)
    hold: float  # post-stroke hold, seconds
    # Longest gesture unit (first to last stroke, seconds); after one that long the hands drop to
    # rest before the next unit.
    unit_seconds: float
    handedness: tuple[float, float, float]  # probabilities of (right, left, both) per gesture unit
    repertoire: dict[str, float]  # gesture type -> weight
    hand_height: float  # metres added to the gesture space's height (chest vs waist gesturer)
    hand_width: float  # metres added outward
    # Posture: forward lean and sideways lean (rad), shoulder drop (rad, collars), head tilt (rad),
    # half the distance between the feet beyond the hips (m), knee softness (pelvis drop, m).
    lean: float
    side_lean: float
    shoulder_drop: float
    head_tilt: float
    stance: float
    pelvis_drop: float
    nod_gain: float  # head nod size on pitch accents
    head_motion: float  # size of slow head wandering
    weight_shift_every: float  # mean seconds between weight shifts
    weight_shift: float  # sideways pelvis travel, m
    blink_every: float  # mean seconds between blinks
    smile: float  # baseline of the assumed smile coefficient
    brow_gain: float  # brow raise on pitch accents

    def to_dict(self) -> dict:
        return asdict(self)


STYLES: tuple[Style, ...] = (
    Style(
        name="avery", speaker_id=1,
        description="calm presenter: few, small, slow beats and open palms, right-handed, upright",
        stroke_rate=0.9, min_stroke_gap=0.75, rest_phrase_share=0.3,
        amplitude=0.75, tempo=1.25, hold=0.22, unit_seconds=8.0,
        handedness=(0.75, 0.1, 0.15),
        repertoire={"beat": 0.45, "open_palm": 0.35, "point": 0.05, "precision": 0.05, "two_handed": 0.10},
        hand_height=0.0, hand_width=0.0,
        lean=0.02, side_lean=0.0, shoulder_drop=0.0, head_tilt=0.0, stance=0.02, pelvis_drop=0.012,
        nod_gain=0.6, head_motion=0.6, weight_shift_every=14.0, weight_shift=0.02,
        blink_every=4.0, smile=0.6, brow_gain=0.5,
    ),
    Style(
        name="bodhi", speaker_id=2,
        description="energetic: frequent, large, fast two-handed gestures, leans forward, big nods",
        stroke_rate=2.0, min_stroke_gap=0.36, rest_phrase_share=0.05,
        amplitude=1.35, tempo=0.8, hold=0.1, unit_seconds=8.0,
        handedness=(0.35, 0.2, 0.45),
        repertoire={"beat": 0.35, "open_palm": 0.2, "point": 0.1, "precision": 0.05, "two_handed": 0.30},
        hand_height=0.04, hand_width=0.06,
        lean=0.12, side_lean=0.0, shoulder_drop=-0.03, head_tilt=0.0, stance=0.07, pelvis_drop=0.02,
        nod_gain=1.4, head_motion=1.3, weight_shift_every=6.0, weight_shift=0.035,
        blink_every=3.0, smile=1.0, brow_gain=1.3,
    ),
    Style(
        name="carmen", speaker_id=3,
        description="precise and left-handed: points and precision grips at chest height, head tilted",
        stroke_rate=1.4, min_stroke_gap=0.5, rest_phrase_share=0.15,
        # Her points and grips at chest height hardly move the elbow: after 3 s the hands drop.
        amplitude=1.0, tempo=1.0, hold=0.3, unit_seconds=3.0,
        handedness=(0.1, 0.75, 0.15),
        repertoire={"beat": 0.2, "open_palm": 0.1, "point": 0.3, "precision": 0.35, "two_handed": 0.05},
        hand_height=0.09, hand_width=-0.02,
        lean=0.04, side_lean=0.03, shoulder_drop=0.0, head_tilt=0.12, stance=0.03, pelvis_drop=0.015,
        nod_gain=0.9, head_motion=0.9, weight_shift_every=9.0, weight_shift=0.025,
        blink_every=5.0, smile=0.2, brow_gain=1.0,
    ),
    Style(
        name="dmitri", speaker_id=4,
        description="reserved: low, small gestures near the waist, right-handed, slouched, wide stance",
        stroke_rate=0.7, min_stroke_gap=0.9, rest_phrase_share=0.45,
        amplitude=0.6, tempo=1.15, hold=0.35, unit_seconds=8.0,
        handedness=(0.7, 0.2, 0.1),
        repertoire={"beat": 0.55, "open_palm": 0.15, "point": 0.1, "precision": 0.1, "two_handed": 0.10},
        hand_height=-0.1, hand_width=0.02,
        lean=0.1, side_lean=-0.02, shoulder_drop=0.1, head_tilt=-0.04, stance=0.09, pelvis_drop=0.01,
        nod_gain=0.35, head_motion=0.5, weight_shift_every=20.0, weight_shift=0.015,
        blink_every=6.0, smile=-0.2, brow_gain=0.3,
    ),
)

STYLE_NAMES: tuple[str, ...] = tuple(s.name for s in STYLES)


def get_style(name: str) -> Style:
    for style in STYLES:
        if style.name == name:
            return style
    raise ValueError(f"unknown style '{name}': choose one of {', '.join(STYLE_NAMES)}")


# The delivery of the corpus' espeak-ng speech at its middle (about 160 words a minute, loudness
# swells of 3 dB: read speech in ../shared/real-speech measures 2-3 dB, a speech of JFK's 4.7)
# and the spread that counts as one step livelier or calmer.
DELIVERY_CENTRE = {"syllable_rate": 4.35, "loudness_variation": 3.2}
DELIVERY_SPREAD = {"syllable_rate": 0.4, "loudness_variation": 1.0}
# At the livelier end (liveliness 1) the style strokes this much more often, larger and faster;
# at the calmer end (-1) as much less often, but not smaller or slower: smaller, slower strokes
# hide from the wrist-speed thresholds that find strokes in motion (metrics.derive_stroke_apexes)
# and would blur the rest in pauses against speech.
LIVELY_RATE, LIVELY_AMPLITUDE, LIVELY_TEMPO = 0.4, 0.25, 0.2


def liveliness(wave, sample_rate: int = 16000) -> float:
    """How lively the delivery of ``wave`` is, in [-1, 1]: the mean of its syllable rate and
    loudness variation (``training.metrics.delivery``) standardised around DELIVERY_CENTRE, clipped."""
    from ..metrics import delivery

    measured = delivery(wave, sample_rate)
    z = sum((measured[k] - DELIVERY_CENTRE[k]) / DELIVERY_SPREAD[k] for k in DELIVERY_CENTRE) / len(DELIVERY_CENTRE)
    return float(min(max(z, -1.0), 1.0))


def lively(style: Style, level: float) -> Style:
    """``style`` at delivery liveliness ``level`` in [-1, 1] (0 leaves it as it is): the stroke rate
    follows the level both ways, size and speed grow above 0 only."""
    return replace(style, stroke_rate=style.stroke_rate * (1 + LIVELY_RATE * level),
                   amplitude=style.amplitude * (1 + LIVELY_AMPLITUDE * max(level, 0.0)),
                   tempo=style.tempo / (1 + LIVELY_TEMPO * max(level, 0.0)))
