"""A frozen-arm watch for tests of the let-go rule (``inference/frozen_arms.py``) in either stream."""
from gestura.inference.frozen_arms import FrozenArmWatch


class EveryPoseFrozen(FrozenArmWatch):
    """The real watch with thresholds every pose meets over ``WINDOW`` frames, so the spans after
    the first that many frames let the arms go; it keeps what it was shown (set ``shown`` to a new
    list per test)."""

    WINDOW = 96
    shown: list = []

    def __init__(self):
        super().__init__(seconds=self.WINDOW / 30, raised_m=-10.0, extent_m=10.0)

    def push(self, motion):
        self.shown.append(motion)
        return super().push(motion)
