"""The 55 SMPL-X joints, their parents, and the body-part index sets used by the model.

Facts from the public SMPL-X joint layout (``smplx.joint_names.JOINT_NAMES[:55]``); see
``shared/design/SMPLX.md``. Kept as plain tuples so that the NumPy engine inside a stock Blender
can use them.
"""

_HAND_FINGERS = ("index", "middle", "pinky", "ring", "thumb")

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw",
    "left_eye_smplhf", "right_eye_smplhf",
) + tuple(
    f"{side}_{finger}{k}" for side in ("left", "right") for finger in _HAND_FINGERS for k in (1, 2, 3)
)

NUM_JOINTS = len(JOINT_NAMES)  # 55
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}


def _parents() -> tuple[int, ...]:
    body = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15)
    hands = []
    for wrist, first in ((20, 25), (21, 40)):
        for f in range(5):
            base = first + 3 * f
            hands += [wrist, base, base + 1]
    return body + tuple(hands)


PARENTS: tuple[int, ...] = _parents()

# Joints of each body part, as MambaTalk splits them (SMPLX.md, "Derived numbers").
UPPER_JOINTS: tuple[int, ...] = (3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21)
LOWER_JOINTS: tuple[int, ...] = (0, 1, 2, 4, 5, 7, 8, 10, 11)
HAND_JOINTS: tuple[int, ...] = tuple(range(25, 55))
JAW_JOINT = 22
EYE_JOINTS: tuple[int, ...] = (23, 24)
FOOT_JOINTS: tuple[int, ...] = (7, 8, 10, 11)  # ankles and feet: the four contact labels

NUM_EXPRESSIONS = 100
FPS = 30.0  # the model's and BEAT2's motion rate

PARTS: tuple[str, ...] = ("face", "upper", "hands", "lower")


def ordered_parts(parts) -> tuple[str, ...]:
    """The part names of ``parts`` (any iterable) in ``PARTS`` order, each once. ValueError naming
    the unknown names: the one check of a part list, which every layer words as its own error."""
    parts = tuple(parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown body parts {unknown}: choose from {', '.join(PARTS)}")
    return tuple(p for p in PARTS if p in parts)
# Joints whose rotations each part owns (face also owns the 100 expression coefficients;
# lower also owns the root translation). Eye joints belong to no part and stay at rest.
PART_JOINTS: dict[str, tuple[int, ...]] = {
    "face": (JAW_JOINT,),
    "upper": UPPER_JOINTS,
    "hands": HAND_JOINTS,
    "lower": LOWER_JOINTS,
}
# The lower body's feature channels: rot6d of its 9 joints, the root channels (x velocity m/s,
# height y m, z velocity m/s; the global motion predictor's output), then 4 foot contacts.
LOWER_ROT6D = slice(0, 6 * len(LOWER_JOINTS))  # [0:54]
LOWER_ROOT = slice(LOWER_ROT6D.stop, LOWER_ROT6D.stop + 3)  # [54:57]
LOWER_CONTACTS = slice(LOWER_ROOT.stop, LOWER_ROOT.stop + 4)  # [57:61]
# Width of each part's model input: rot6d per joint plus extras (SMPLX.md).
PART_DIMS: dict[str, int] = {"face": 6 + NUM_EXPRESSIONS, "upper": 78, "hands": 180, "lower": LOWER_CONTACTS.stop}

# Pose vector (165 = 55 x 3 axis-angle) slices, as in BEAT2 npz files.
POSE_DIM = NUM_JOINTS * 3


def children(joint: int) -> tuple[int, ...]:
    return tuple(i for i, p in enumerate(PARENTS) if p == joint)
