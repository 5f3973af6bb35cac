"""Version 2's mixer organisation (helper "mix"): the weight sets' selectors
say what they claim, and every weight set's row stays inside its own block,
for every colour, bit, known bits and selector (version 3's too: its set 4,
by the 2x2 phase)."""
import numpy as np
import pytest

from pixzip.codec.mixer import v2, v3
from pixzip.codec.mixer.v2 import components as cm
from pixzip.codec.mixer.v2 import kernel


def test_the_locally_best_sub_predictor_is_the_one_with_the_smallest_error_around_the_pixel():
    perr = np.full((3, 5, 3, cm.N_BLEND + 1), 40, np.uint8)
    perr[1, 2, 1, 4] = 0                     # W of (1, 3): sub-predictor 4 is best there, counted twice
    perr[0, 3, 1, 2] = 1                     # N of (1, 3): 2 is second
    sub = np.zeros(cm.N_BLEND, np.int64)
    # (a whole image is a ring of its own rows: row y in row y, row y - 1 in row y - 1)
    assert cm.blend(perr, sub, 1, 0, 3, 1, 1)[2] == 4
    # on the strip's first row only W is known
    assert cm.blend(perr, sub, 1, 0, 3, 0, 1)[2] == 4
    # the first pixel knows nothing: sub-predictor 0
    assert cm.blend(perr, sub, 0, -1, 0, 0, 1)[2] == 0


@pytest.mark.parametrize("version", [v2, v3], ids=["2", "3"])
def test_every_weight_set_row_lies_in_its_own_block_of_the_first_mixer(version):
    from importlib import import_module
    cm, kernel = (import_module(f"{version.__name__}.{m}") for m in ("components", "kernel"))
    assert cm.N_SETS == 7 and cm.SET_ROWS[4] == (8 * 5 if version.SPEC.phase else 8 * cm.N_BLEND)
    ms = np.zeros((3, cm.N_SETS), np.int64)
    sel = np.zeros(4, np.int64)
    seen = [set() for _ in range(cm.N_SETS)]
    for y, x, qa in [(y, x, qa) for y in range(2) for x in range(37) for qa in (0, 7)]:
        kernel.selectors(0, qa, y, x, 37, sel)      # the phase, or (activity 0: flat) the fifth row
        assert 0 <= sel[2] < cm.STRIPES and sel[3] == ((y & 1) * 2 + (x & 1) if qa else kernel.FLAT_ROW)
        for c in range(cm.MAX_COLOURS):
            for k in range(8):
                for c0 in range(1 << k, 2 << k):
                    for conf, qb, blended in ((0, 0, 0), (7, 7, 255), (3, 5, c0 << (8 - k))):
                        sel[0], sel[1] = (x % cm.N_BLEND, x % 8)
                        kernel.set_rows(ms, c, k, c0, conf, qb, blended, sel)
                        for s in range(cm.N_SETS):
                            row = ms[cm.SET_ROW, s]
                            assert cm.SET_OFFSETS[s] <= row < cm.SET_OFFSETS[s] + cm.SET_ROWS[s] * cm.MAX_COLOURS
                            seen[s].add(int(row))
    assert all(len(rows) > 1 for rows in seen)
    if version.SPEC.phase:           # set 4: each colour's 8 bits by 4 phases and flat
        assert len(seen[4]) == cm.MAX_COLOURS * 8 * 5



def test_a_weight_set_learns_only_from_errors_larger_than_the_skip():
    x_in = np.full(cm.N_PAD, 2047, np.int32)
    for bit in (0, 1):
        for e, learns in ((cm.MIX_SKIP, False), (cm.MIX_SKIP + 1, True)):
            w1 = np.full((cm.W1_ROWS, cm.N_PAD), cm.W1_INIT, np.int32)
            w2 = np.zeros((3 * 8, cm.N_SETS + 1), np.int32)
            ms = np.zeros((3, cm.N_SETS), np.int64)
            ms[cm.SET_ROW] = cm.SET_OFFSETS
            ms[cm.PROB] = 4096 - e if bit else e
            cm.learn_sets(w1, w2, x_in, ms, 0, 2048, bit)
            assert (w1 != cm.W1_INIT).any() == learns
