"""The mixer's parameters, one frozen object per released version.

A ``MixerSpec`` holds every number that decides the mixer's bytes apart from
its rules (the contexts, the predictions and the arithmetic, written in
``definition.py``): how many inputs of each kind, the table layouts, the
rates.  Counts derived from them (the inputs, their padding to whole
vectors, the weight sets' rows and offsets) are properties, never written
twice.  ``digest`` is a hash of the canonical form: the version test
(``tests/test_mixer_versions.py``) records it with the bytes of each
released coder.

The rule (see the package's docstring): a change to any mixer byte, here or
in the rules, is a new spec version and a new coder id, and every released
spec stays decodable.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass


ADDED = {"phase": 0, "table_budget": 0, "prior": "", "prior_digest": "", "prior_sets": 1}     # fields added after a version was released, and their defaults (``canonical``)


@dataclass(frozen=True)
class MixerSpec:
    version: int
    colours: int               # the colours every table is laid out for (an image may have fewer)
    n_hashed: int              # hashed contexts (``contexts.py``)
    n_maps: int                # residual maps
    n_blend: int               # the blended prediction's sub-predictions
    map_contexts: int          # each residual map's error contexts
    set_rows: tuple            # the first mixer's weight sets: rows per colour
    h_inc: int                 # a residual map's increment per value seen
    h_limit: int               # and its total before every bin is halved
    count_max: int             # the hashed counters' count limit
    mix_lr: int                # the first mixer's learning rate
    mix2_lr: int               # the second's
    apm_rate: int              # the APM stages' shift
    w1_init: int               # the first mixer's initial weights (2048: 1/32)
    bias: int                  # the bias input
    rounding: int              # weight updates round to nearest: + rounding, >> 16
    table_bits_min: int        # log2 of the hashed table's buckets (64 bytes each): at least
    table_bits_max: int        # and at most (one state, coder 2)
    part_table_bits_max: int   # at most, in a column part (coder 3)

    @property
    def n_inputs(self) -> int:
        """The first mixer's inputs: hashed contexts, maps, the network, a bias."""
        return self.n_hashed + self.n_maps + 2

    @property
    def n_pad(self) -> int:
        """The inputs padded with zeros to a multiple of 16: whole vectors (version 1's 26 inputs: 32, as
        when this was the next power of two; version 2's 42: 48, a quarter less work than 64)."""
        return -(-self.n_inputs // 16) * 16

    @property
    def n_sets(self) -> int:
        return len(self.set_rows)

    @property
    def set_offsets(self) -> tuple:
        """Each weight set's first row in the first mixer's table."""
        return tuple(sum(self.set_rows[:i]) * self.colours for i in range(self.n_sets))

    @property
    def w1_rows(self) -> int:
        return sum(self.set_rows) * self.colours

    def canonical(self) -> str:
        """The spec as one line of sorted JSON: what ``digest`` hashes.  A field added after a version
        was released (``ADDED``) is left out where it has its default, so a released digest stays."""
        fields = {k: v for k, v in asdict(self).items() if not (k in ADDED and v == ADDED[k])}
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()


# version 1, measured on 256x384 crops of ten photos-train images (never Kodak)
SPEC_1 = MixerSpec(
    version=1, colours=3, n_hashed=16, n_maps=8, n_blend=6, map_contexts=64,
    set_rows=(256, 8 * 8, 8 * 8, 8 * 3),
    h_inc=32, h_limit=1 << 16, count_max=255, mix_lr=14, mix2_lr=4, apm_rate=7, w1_init=2048, bias=256,
    rounding=1 << 15, table_bits_min=10, table_bits_max=22, part_table_bits_max=20)



@dataclass(frozen=True)
class MixerSpec2(MixerSpec):
    """Version 2's numbers: version 1's fields, and those of the parts it adds."""
    n_ols: int = 0             # online least-squares predictors per colour (``v2/ols.py``): the last maps, 2 each
    stripes: int = 16          # the column stripes of a weight set's selector
    mix_skip: int = 64         # a weight row is not updated when its error (12 bits) is at most this
    n_bank: int = 0            # the predictor bank's predictors (``v2/predictors.py``), tracked
    bank: tuple = ()           # which (``v2/predictors.predict_all``), n_bank of them
    bank_maps: int = 0         # the first of them with a map each: maps from the 9th on
    bank_derived: int = 0      # and derived predictions, each with a map: the bank blended (1), and its best (2)
    phase: int = 0             # 1: the pixel's 2x2 phase (y & 1, x & 1) read by colours 1 and 2 (version 3)
    table_budget: int = 0      # log2 of the buckets of all column parts together, at most (version 4); 0: each
                               # part at most 2^part_table_bits_max
    prior: str = ""            # the learned initial weights' file (``mixer/prior.py``, version 5); "": none
    prior_digest: str = ""     # and the SHA-256 of its arrays (``prior.content_digest``): part of the format
    prior_sets: int = 1        # the prior's sets of tables (version 6: 2), the payload naming one (``prior.choose``)

    def __post_init__(self):
        if len(self.bank) != self.n_bank or self.bank_maps > self.n_bank or self.bank_derived > 2 \
                or self.n_maps != 8 + self.bank_maps + self.bank_derived + 2 * self.n_ols:
            raise ValueError(f"mixer spec {self.version}: the bank and the maps do not agree")
        # with the phase: the maps' 64 contexts once per phase, and weight set 4 selected by the phase (and a
        # row for a flat neighbourhood)
        if self.map_contexts != 64 << 2 * self.phase or self.phase and self.set_rows[4] != 8 * 5:
            raise ValueError(f"mixer spec {self.version}: the phase and the contexts do not agree")


# version 2, in development (no coder id makes it yet): tuned on whole photos-train images (never Kodak),
# ``benchmarks/mixer_tune.py``
# (w1_init: version 1's 1/32 per input for 26 inputs, scaled to 64: more inputs, each weighing less at first)
SPEC_2 = MixerSpec2(**{**asdict(SPEC_1), "version": 2,
                        # 32 predictors tracked, the first 8 with a map each, and the 2 derived ones (each with a
                        # map); the least-squares predictors' 6 maps
                        "n_bank": 32, "bank": tuple(range(32)), "bank_maps": 8, "bank_derived": 2,
                        "n_maps": 8 + 8 + 2 + 6, "n_ols": 3, "w1_init": 2048 * 26 // 64,
                        # the maps' bins are uint16: a bin reaches at most h_limit + h_inc < 2^16 before halving
                        "h_limit": (1 << 16) - 64,
                        # v1's sets; the locally best sub-predictor, the activity, the column stripe
                        "set_rows": SPEC_1.set_rows + (8 * 6, 8 * 8, 8 * 16)})

# version 3: version 2 and the 2x2 phase of colours 1 and 2 (``v3/``): chroma that was once subsampled 2x2
# and interpolated (Photo CD scans, JPEG's 4:2:0) is predictable from its neighbours at some phases and new at
# others.  Colours 1 and 2 keep one set of least-squares systems per phase, their maps from the 9th on (the
# bank's and the least squares') read 64 contexts per phase, and weight set 4 is selected by the phase (for
# every colour) instead of version 2's locally best blend sub-predictor.  Where the neighbourhood is flat
# (activity 0) the maps and set 4 read no phase: a flat image then learns as fast as in version 2.  Measured on
# whole photos-train images, ``docs/mixer2.md``.
SPEC_3 = MixerSpec2(**{**asdict(SPEC_2), "version": 3, "phase": 1, "map_contexts": 4 * 64,
                        "set_rows": SPEC_2.set_rows[:4] + (8 * 5,) + SPEC_2.set_rows[5:]})

# version 4: version 3 with 6 more of the bank's predictors through maps of their own (14 of 32: the inputs
# still fit 48 lanes; 16, 24 and 32 gained little more and cost a wider vector), and one table budget for every
# column part together, 2^22 buckets (256 MB): one state (``-9``'s colour images since 0.10.2) gets the 2^22 of
# the mixer alone instead of a part's 2^20, and P parts 2^22 / P rounded down to a power of two.  Made only over the network's counts (coder 10): measured there, on one state, whole
# photos-train images (``docs/mixer2.md``, "0.11.0").
SPEC_4 = MixerSpec2(**{**asdict(SPEC_3), "version": 4, "bank_maps": 14, "n_maps": 8 + 14 + 2 + 6,
                        "table_budget": 22})

# version 5: version 4 starting from learned weights instead of equal ones: the first mixer's weight rows, the
# second mixer's and both APM stages' tables begin as the mean of their final values over 54 images, 27
# photos-train images (none of the tuning or check sets) and the same with their chroma once subsampled 2x2
# (``benchmarks/mixer_prior.py --subsampled``).  The adaptive state still learns at the same rates; rows an
# image visits rarely (a column stripe, a rare bit context) start where photos leave them.  Measured on whole
# photos-train images, one state over max's counts (``docs/mixer2.md``, "0.12.0").
SPEC_5 = MixerSpec2(**{**asdict(SPEC_4), "version": 5, "prior": "prior-5.npz",
                        "prior_digest": "ffb262b98e63eb91e9f6407cde33c2be98d5d0675e1d3b03b24861d475e6b8ca"})

# version 6: version 5 whose prior holds two sets of tables, the mean of their final values over 106 photos-train
# images (every RGB image of at most 1 Mpx in neither the tuning nor the check set: set 0) and over the same with
# their chroma once subsampled 2x2 (set 1, ``benchmarks/mixer_prior.py --sets``); the encoder chooses set 1 for an image whose 2x2 phase statistic says
# its colour was once subsampled (``prior.choose``) and names the set in the payload's first byte.  Measured on
# whole photos-train images, one state over max's counts (``docs/mixer2.md``, "0.13.0").
SPEC_6 = MixerSpec2(**{**asdict(SPEC_5), "version": 6, "prior": "prior-6.npz", "prior_sets": 2,
                        "prior_digest": "83faad05cc80f5b7f310f46bc006fa590acc95dbaecaf8eaa4e414639aeb630f"})

# coder id -> the spec its bytes follow (2, 5 and 8: one state, 3, 6, 7, 9, 10 and 11: column parts; 7 is 6 over
# an RGB network's counts of a gray image, ``with_network``)
RELEASED = {2: SPEC_1, 3: SPEC_1, 5: SPEC_2, 6: SPEC_2, 7: SPEC_2, 8: SPEC_3, 9: SPEC_3, 10: SPEC_4, 11: SPEC_5, 12: SPEC_6}
