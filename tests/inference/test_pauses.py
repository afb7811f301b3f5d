"""Which codes lie in a pause (known values)."""
import numpy as np
import pytest

from gestura.inference.pauses import pause_codes


def test_pause_codes_are_those_with_no_speech_in_their_frames_nor_their_margins():
    # 6 codes of 4 frames with 3 frames of margin either side: speech in frames 0-4 and 22-29.
    pauses = np.ones(3 + 24 + 3, bool)
    pauses[:5] = pauses[22:] = False
    # code i reads frames 4i .. 4i + 9 of the padded array
    assert pause_codes(pauses, 4, margin=3).tolist() == [False, False, True, True, False, False]
    assert not pause_codes(np.zeros(30, bool), 4, margin=3).any()
    assert pause_codes(np.ones(30, bool), 4, margin=3).all()
    with pytest.raises(ValueError, match="whole codes of 4 frames plus 3 either side"):
        pause_codes(np.zeros(31, bool), 4, margin=3)
