"""The 16-bit coder's numbers: every one that decides its bytes, with the
payload header's layout.

The rule (as the mixer's): any change to a byte this coder makes, here or in
the rules (``kernel.py``, ``depth.py``), is a new ``VERSION``; the payload's
first byte names it, and every released version stays decodable.
``tests/test_deep.py`` pins the bytes of a fixed image.
"""
from __future__ import annotations

VERSION = 1                 # the payload's first byte

# ---------------------------------------------------------------- the header
# version, kind, form, param, low (2 bytes, little-endian), bits: 7 bytes
HEADER_BYTES = 7
KIND_CODED = 0              # the range coder's stream follows
KIND_STORED = 1             # the coded samples, 2 bytes each little-endian, follow (when coding would not pay)
FORM_SHIFT = 0              # sample = (coded << param) | low: param low bits the same in every sample
FORM_REPLICATED = 1         # sample = coded's param bits repeated down to 16 (x257 for 8 bits)
FORM_SCALED = 2             # sample = round(coded * 65535 / (2^param - 1))

# ---------------------------------------------------------------- the model
N_SUB = 8                   # spatial sub-predictions per colour; colours after the first add each one
                            # corrected by the colour before's error (``kernel.sub_predictions``)
N_BLEND = 2 * N_SUB         # the blend's inputs in colours after the first (the first uses N_SUB)
Q_ACT = 42                  # classes of the local activity (half octaves of the weighted error sum)
Q_GRAD = 42                 # classes of the local gradient
Q_NEAR = 21 * 21            # classes of the nearest errors (W and N; or the colour before's and the activity)
N_INPUTS = 4                # the mixer's inputs: three counters' stretches and a bias
BIAS = 256                  # the bias input
MAX_BITS = 16
# the binary decisions of one sample, each a node: "not zero"; "the exponent is above k" for k = 1..15;
# the sign, by the signs of the W and N errors; the mantissa's bits under the leading one, by exponent
NODE_NONZERO = 0
NODE_UNARY = 0              # + k, k = 1..15
NODE_SIGN = 16              # + 3 * sign(W) + sign(N), 9 nodes
NODE_MANTISSA = 25          # + 20 * exponent + place (0 the top bit, 1-2 the second by the top, 3.. the rest)
N_NODES = NODE_MANTISSA + 20 * (MAX_BITS + 1)
COUNT_LIMIT = 1023          # a counter's rate falls to 1 / (COUNT_LIMIT + 1.5)
W_INIT = 24576              # the mixer's initial weights (0.375 each)
W_LIMIT = 1 << 22           # and their bound
MIX_LR = 24                 # its learning rate
BYTES_PER_SAMPLE = 48       # worst case: 33 decisions at the probability floor (11 bits each), and room
