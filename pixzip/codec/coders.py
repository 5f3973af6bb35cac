"""Every payload coder behind one interface, in one table keyed by what the
header says: (payload kind, coder id).

A coder encodes an image (``encode``), decodes a payload (``decode``), and
says before anything is allocated what decoding takes (``decode_memory``)
and the fewest payload bytes that can hold an image (``min_payload_bytes``):
the checks ``api`` runs against the limits, for every kind alike.

The table is keyed by (kind, coder id), not by the coder id alone, because
the header's id does not name a coder by itself: coder 2 is the mixer alone
in a mixer payload and the mixer over the network's counts (one state, from
files made before the column parts) in a network payload, and the stored
payloads (raw, deflate) both carry id 0, told apart by their kind.  The
stored payloads are coders too, so that ``decompress`` is one look-up and
their memory check is the same as the others'.

The kernels (numba) load on first use, never at import: each coder imports
its modules when it codes.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ..errors import CorruptError
from .format import container
from .format import stored as stored_payloads
from .levels import MIXER, MIXER_NETWORK, NETWORK
from .network import rangecoder
from .network.modelfile import ModelFile

Progress = Callable[[int], None]


class Frame(NamedTuple):
    """What a coder's memory and size checks need to know of an image: its
    size, its strips, and (coder 3) its column parts."""
    height: int
    width: int
    channels: int
    strip_height: int = 0
    parts: int = 0

    @property
    def n_subpixels(self) -> int:
        return self.height * self.width * self.channels


@dataclass(frozen=True)
class Job:
    """How to encode: the settings that never change the bytes (``strip_rows``,
    ``device``, ``progress``, ``measure``: also the ideal code length) and
    those that do (``strip_height``, ``parts``)."""
    strip_height: int = 0
    parts: int = 2
    strip_rows: int | None = None
    device: str = "auto"
    progress: Progress | None = None
    measure: bool = False


@dataclass(frozen=True)
class Coded:
    """A payload and, when measured, its ideal code length: the mixer's or
    the network's cross-entropy (``ideal_bits``), the network's own beside
    the mixer's (``network_bits``), and the seconds spent measuring them."""
    data: bytes
    ideal_bits: float | None = None
    network_bits: float | None = None
    ideal_s: float = 0.0


class Coder:
    """One payload coder: the header's ``kind`` and ``coder_id``, the
    ``method`` users name it by (None: decoded, no longer made) and whether
    it needs a network (``uses_network``)."""
    kind: int
    coder_id: int
    method: str | None = None
    uses_network: bool = False
    stored: bool = False        # a stored payload (raw, deflate): no strips to name in a refusal
    gray: bool = False          # made for a gray image over an RGB network (coder 7), not for the network's colours

    def model_fits(self, model_colors: int, channels: int) -> bool:
        """Whether a network of ``model_colors`` can code (or have coded) an image of ``channels`` with this coder."""
        return (model_colors, channels) == (3, 1) if self.gray else model_colors == channels

    def encode(self, pixels: np.ndarray, net: ModelFile | None, job: Job) -> Coded:
        raise NotImplementedError(f"{type(self).__name__} is only decoded")

    def decode(self, payload, frame: Frame, net: ModelFile | None, progress: Progress | None) -> np.ndarray:
        raise NotImplementedError

    def frame(self, header: container.Header, payload) -> Frame:
        """The image a header claims, as this coder's checks see it (strips only with a network)."""
        return self.section_frame(header.height, header.width, header.channels, header.strip_height, payload)

    def section_frame(self, height: int, width: int, channels: int, strip_height: int, payload) -> Frame:
        """The image of ``channels`` planes a payload (or a format-3 section) holds."""
        return Frame(height, width, channels, strip_height if self.uses_network else 0)

    def decode_memory(self, frame: Frame, net: ModelFile | None = None, payload_bytes: int = 0) -> int:
        """Bytes that decoding ``frame`` allocates."""
        raise NotImplementedError

    def min_payload_bytes(self, n_subpixels: int, net: ModelFile | None = None) -> int:
        """The fewest payload bytes that can hold ``n_subpixels``; a shorter
        payload is refused before the image is allocated."""
        return 0


class Raw(Coder):
    kind, coder_id, stored = container.RAW, 0, True

    def encode(self, pixels, net, job) -> Coded:
        return Coded(stored_payloads.raw_payload(pixels))

    def decode(self, payload, frame, net, progress):
        return stored_payloads.raw_pixels(payload, frame.height, frame.width, frame.channels)

    def decode_memory(self, frame, net=None, payload_bytes=0):
        return frame.n_subpixels


class Deflate(Coder):
    kind, coder_id, stored = container.DEFLATE, 0, True

    def encode(self, pixels, net, job) -> Coded:
        return Coded(stored_payloads.deflate_payload(pixels))

    def decode(self, payload, frame, net, progress):
        return stored_payloads.deflate_pixels(payload, frame.height, frame.width, frame.channels)

    def decode_memory(self, frame, net=None, payload_bytes=0):
        """The image itself, Pillow's image (4 bytes a pixel for RGB), the
        payload's bytes and the PNG made around the payload (measured:
        16384x16384 RGB, 2.67 GB)."""
        h, w, c = frame.height, frame.width, frame.channels
        return 2 * frame.n_subpixels + h * w * (4 if c == 3 else 1) + 2 * payload_bytes


class Network(Coder):
    """The network alone (coder 1): its counts drive the range coder."""
    kind, coder_id, method, uses_network = container.NETWORK, container.CODER, NETWORK, True

    def encode(self, pixels, net, job) -> Coded:
        from .network.enc_stream import encode_device, symbols_and_counts
        enc = rangecoder.Encoder()
        bits = seconds = 0.0
        for sym, counts, n in symbols_and_counts(net, pixels, job.strip_rows, job.strip_height,
                                                 encode_device(job.device), reuse=1):
            enc.encode(sym, counts)
            if job.measure:
                t = time.perf_counter()
                bits += rangecoder.cross_entropy_bits(sym, counts)
                seconds += time.perf_counter() - t
            del sym, counts     # not alive while the next chunk is made
            if job.progress is not None:
                job.progress(n)
        return Coded(enc.to_bytes(), bits if job.measure else None, None, seconds)

    def decode(self, payload, frame, net, progress):
        from .network.dec_wavefront import decode_image
        dec = rangecoder.Decoder(bytes(payload), tail_bits=rangecoder.TAIL_BITS)

        def source(counts, rows, cols, c):
            return dec.decode(counts)

        pixels = decode_image(net, frame.height, frame.width, source, progress=progress,
                              strip_height=frame.strip_height)
        if not dec.exhausted():
            raise CorruptError("payload has data left over after the last pixel")
        return pixels

    def decode_memory(self, frame, net=None, payload_bytes=0):
        from .network.dec_wavefront import decode_memory
        return decode_memory(net, frame.height, frame.width, frame.strip_height)

    def min_payload_bytes(self, n_subpixels, net=None):
        """The counts rule gives the likeliest symbol at most exp[0] /
        (exp[0] + 255 exp[-1]), so each costs at least -log2 of that (0.0056
        bits with the shipped tables; the coder measured 0.0058).  Half of
        it, less 8 bytes, is the bound."""
        top, low = float(net.exp[0]), float(net.exp[-1])
        bits = -math.log2(top / (top + 255 * low))
        return int(n_subpixels * bits / 2 / 8) - 8


def _mixer_classes(version: int):
    """Mixer version ``version``'s (one-state encoder, decoder, column parts' encoder, decoder)."""
    if version == 1:
        from .mixer import column_parts, one_state
        return one_state.Encoder, one_state.Decoder, column_parts.Encoder, column_parts.Decoder
    if version == 2:
        from .mixer.v2 import coders as v
    elif version == 3:
        from .mixer.v3 import coders as v
    elif version == 4:
        from .mixer.v4 import coders as v
    elif version == 5:
        from .mixer.v5 import coders as v
    else:
        from .mixer.v6 import coders as v
    return v.OneStateEncoder, v.OneStateDecoder, v.PartsEncoder, v.PartsDecoder


class Mixer(Coder):
    """The context mixer alone (coder 2 in a mixer payload: version 1), in raster order."""
    kind, coder_id, method = container.MIXER, container.MIXER_CODER, MIXER
    version = 1          # the mixer's (``mixer/spec.py``)

    def encode(self, pixels, net, job) -> Coded:
        enc = _mixer_classes(self.version)[0](pixels)
        enc.add_image(job.progress)
        data = enc.finish()
        return Coded(data, enc.ideal_bits if job.measure else None)

    def decode(self, payload, frame, net, progress):
        dec = _mixer_classes(self.version)[1](payload, frame.height, frame.width, frame.channels)
        dec.take_image(progress)
        return dec.finish()

    def decode_memory(self, frame, net=None, payload_bytes=0):
        from .mixer.one_state import state_bytes
        return state_bytes(frame.height, frame.width, frame.channels, _mixer_classes(self.version)[1].kernel)

    def min_payload_bytes(self, n_subpixels, net=None):
        from .mixer.one_state import min_payload_bytes
        return min_payload_bytes(n_subpixels)


class MixerOneStateWithNetwork(Mixer):
    """The mixer with the network's counts in one state (coder 2 in a network
    payload): read from files made before the column parts, never made."""
    kind, coder_id, method, uses_network = container.NETWORK, container.MIXER_CODER, None, True

    encode = Coder.encode

    def decode(self, payload, frame, net, progress):
        from .mixer import with_network
        return with_network.decode(payload, net, *frame[:4], in_parts=False, progress=progress)

    def decode_memory(self, frame, net=None, payload_bytes=0):
        return Network().decode_memory(frame, net) + super().decode_memory(frame)


class MixerWithNetwork(Mixer):
    """The mixer with the network's counts as an input, in column parts
    (coder 3): the mixer's size bound, the network's and the parts' memory.
    ``parts``: the column parts it makes unless the caller names them."""
    kind, coder_id, method, uses_network = container.NETWORK, container.PARTS_CODER, MIXER_NETWORK, True
    parts = 2

    def encode(self, pixels, net, job) -> Coded:
        return self._encode_in_parts(pixels, net, job, _mixer_classes(self.version)[2], job.progress)

    def _encode_in_parts(self, pixels, net, job, encoder, progress) -> Coded:
        """The payload of the parts' ``encoder`` class over the network's stream, ``progress`` told."""
        from .mixer import with_network
        data, ideal, network_bits, seconds = with_network.encode_in_parts(
            pixels, net, job.strip_rows, job.strip_height, job.device, progress, job.measure, job.parts,
            encoder=encoder, gray=self.gray)
        return Coded(data, ideal if job.measure else None, network_bits, seconds)

    def decode(self, payload, frame, net, progress):
        from .mixer import with_network
        return with_network.decode(payload, net, *frame[:4], in_parts=True, progress=progress,
                                   decoder=_mixer_classes(self.version)[3], gray=self.gray)

    def section_frame(self, height, width, channels, strip_height, payload) -> Frame:
        from .mixer.column_parts import prior_head, split_payload
        return super().section_frame(height, width, channels, strip_height, payload)._replace(
            parts=split_payload(prior_head(payload, _mixer_classes(self.version)[3].kernel)[1])[0])

    def decode_memory(self, frame, net=None, payload_bytes=0):
        from .mixer import column_parts
        network = Network().decode_memory(frame, net) if net is not None else 0
        if not frame.parts:         # (a caller's 0 parts: the one state's, as before)
            return network + super().decode_memory(frame)
        if frame.parts == 1 and net is not None:     # one state: a second set of step buffers (odd steps), and
            from .network.dec_wavefront import early_sum_bytes, step_buffer_bytes     # the early sums
            network += step_buffer_bytes(net, frame.height, frame.width, frame.strip_height) \
                + early_sum_bytes(net, frame.height, frame.width, frame.strip_height)
        from .network.schedule import strip_layout
        return network + column_parts.state_bytes(frame.height, frame.width, frame.channels, frame.parts,
                                                  _mixer_classes(self.version)[3].kernel,
                                                  strip_layout(frame.height, frame.strip_height)[1])


class Mixer2(Mixer):
    """The context mixer version 2 alone (coder 5 in a mixer payload)."""
    coder_id, version = container.MIXER2_CODER, 2


class Mixer2WithNetwork(MixerWithNetwork):
    """The context mixer version 2 with the network's counts, in column parts (coder 6)."""
    coder_id, version = container.PARTS2_CODER, 2


class Mixer2GrayWithNetwork(Mixer2WithNetwork):
    """A gray image by the context mixer version 2 in column parts over an RGB
    network (coder 7): the network sees the image as (L, L, L) and the mixer
    takes its counts of colour 0, which depend only on the pixels before.
    Measured (the mixer's ideal code length, 2 parts, the ``max`` network,
    ``benchmarks/mixer_tune.py GRAY/ -m max``): 1.2% smaller than the mixer
    alone on the gray tuning images, 1.4% on 15 others (whose files:
    ``docs/bench-0.9.0.md``).  The network computes every
    colour (the next positions read them), so it takes an RGB image's
    network time and a third of its mixer time."""
    coder_id = container.GRAY_PARTS2_CODER
    gray = True


class Mixer3(Mixer):
    """The context mixer version 3 alone (coder 8 in a mixer payload): version 2 and the 2x2 phase of
    colours 1 and 2 (``mixer/v3``)."""
    coder_id, version = container.MIXER3_CODER, 3


class Mixer3WithNetwork(MixerWithNetwork):
    """The context mixer version 3 with the network's counts, in column parts (coder 9): one, unless the
    caller names more (``-9``'s colour images in 0.10.2; since 0.11.0, coder 10).  One state made files
    0.30% smaller on photos-train images than two parts, 0.79% on such images with colour once subsampled (Kodak's kind),
    and its decoder runs the network on one core and the mixer on the other (``network.kernels.handover``;
    ``docs/mixer2.md``, "0.10.2")."""
    coder_id, version = container.PARTS3_CODER, 3
    parts = 1


class Mixer4WithNetwork(Mixer3WithNetwork):
    """The context mixer version 4 with the network's counts, in column parts (coder 10, ``-9``'s colour
    images from 0.11.0): one, unless the caller names more.  Version 3 with 14 bank predictors through
    maps (8) and one table budget for all parts, 2^22 buckets (one state: 2^22, a part of coder 9 2^20);
    ``docs/mixer2.md``, "0.11.0".  The mixer alone stays version 3 (coder 8, ``MIXER_ALONE``)."""
    coder_id, version = container.PARTS4_CODER, 4


class Mixer5WithNetwork(Mixer4WithNetwork):
    """The context mixer version 5 with the network's counts, in column parts (coder 11, ``-9``'s colour
    images from 0.12.0): version 4 whose mixers and APM stages start from a learned prior
    (``mixer/prior.py``) instead of equal weights; ``docs/mixer2.md``, "0.12.0".  The mixer alone stays
    version 3 (coder 8, ``MIXER_ALONE``)."""
    coder_id, version = container.PARTS5_CODER, 5


class Mixer6WithNetwork(Mixer5WithNetwork):
    """The context mixer version 6 with the network's counts, in column parts (coder 12, ``-9``'s colour
    images from 0.13.0): version 5 whose prior holds two sets, one learned on photos and one on photos whose
    colour was once subsampled 2x2 (Kodak's kind); the encoder chooses by how smooth the colour is
    (``prior.choose``) and names the set in the payload's first byte; ``docs/mixer2.md``, "0.13.0" and
    "0.13.1".  Where the choice is unsure (``prior.candidates``), the encoder codes the image from each set,
    one after the other, and keeps the smaller payload (the first where they tie).  The mixer alone stays
    version 3 (coder 8, ``MIXER_ALONE``)."""
    coder_id, version = container.PARTS6_CODER, 6

    def encode(self, pixels, net, job) -> Coded:
        import functools

        from .mixer import prior
        parts_encoder = _mixer_classes(self.version)[2]
        tries = prior.candidates(pixels, parts_encoder.kernel.SPEC)
        progress = _shared_progress(job.progress, len(tries))
        best = None
        for s in tries:
            coded = self._encode_in_parts(pixels, net, job, functools.partial(parts_encoder, prior_set=s), progress)
            if best is None or len(coded.data) < len(best.data):
                best = coded
        return best


def _shared_progress(progress, tries: int):
    """``progress`` for an image coded ``tries`` times: each call's count divided among the tries (whole
    counts, so that the total is the image's once)."""
    if progress is None or tries == 1:
        return progress
    done = [0, 0]           # counts given, counts passed on

    def share(n):
        done[0] += n
        step = done[0] // tries - done[1]
        done[1] += step
        if step:
            progress(step)
    return share


def _deep():
    """The 16-bit coder's package (``pixzip/codec/deep/``), or None where this pixzip has none."""
    try:
        from . import deep
    except ImportError:
        return None
    return deep


class Deep(Coder):
    """The 16-bit coder (coder 4 in a format-3 DEEP section): a whole 16-bit
    picture's samples, (H, W, C) uint16, C 1 or 3."""
    kind, coder_id = container.DEEP, container.DEEP_CODER

    @staticmethod
    def available() -> bool:
        return _deep() is not None

    def _module(self):
        deep = _deep()
        if deep is None:
            from ..errors import FormatError
            raise FormatError("coder 4 (the 16-bit coder) is not in this pixzip")
        return deep

    def encode(self, pixels, net, job) -> Coded:
        return Coded(self._module().encode(pixels))

    def decode(self, payload, frame, net, progress):
        return self._module().decode(bytes(payload), frame.height, frame.width, frame.channels)

    def decode_memory(self, frame, net=None, payload_bytes=0):
        return self._module().decode_memory(frame.height, frame.width, frame.channels)

    def min_payload_bytes(self, n_subpixels, net=None):
        return 0       # ``section_min_bytes``: the deep coder's own bound needs the shape

    def section_min_bytes(self, frame: Frame) -> int:
        return self._module().min_payload_bytes(frame.height, frame.width, frame.channels)


CODERS: dict[tuple[int, int], Coder] = {(c.kind, c.coder_id): c for c in (
    Raw(), Deflate(), Network(), Mixer(), MixerOneStateWithNetwork(), MixerWithNetwork(), Mixer2(),
    Mixer2WithNetwork(), Mixer2GrayWithNetwork(), Mixer3(), Mixer3WithNetwork(), Mixer4WithNetwork(),
    Mixer5WithNetwork(), Mixer6WithNetwork())}
DEEP = Deep()        # a format-3 section's coder only, not a payload's
SECTION_CODERS: dict[tuple[int, int], Coder] = {**CODERS, (DEEP.kind, DEEP.coder_id): DEEP}
# the coder a method makes, by (method, mixer version, a gray image over an RGB network): a method makes
# one coder in each version, and mixer+network with the mixer 2 one more for gray over RGB (coder 7)
BY_METHOD: dict[tuple[str, int, bool], Coder] = {
    (c.method, v, c.gray): c for c in CODERS.values() if c.method for v in (1, 2, 3, 4, 5, 6)
    if getattr(c, "version", v) == v}
# version 4 was measured and made over the network's counts only: the mixer alone stays version 3 (coder 8)
# (version 5 too: version 4 with a prior learned over the network's counts)
MIXER_ALONE = {4: 3, 5: 3, 6: 3}
for _v, _alone in MIXER_ALONE.items():
    BY_METHOD[MIXER, _v, False] = BY_METHOD[MIXER, _alone, False]


def making(method: str, mixer: int, gray: bool = False) -> Coder:
    """The coder that ``method`` makes with mixer version ``mixer`` (the network alone has no mixer);
    ``gray``: of a gray image over an RGB network (``levels.Plan.gray``), coder 7."""
    return BY_METHOD[method, mixer, gray]
STORED = {"raw": CODERS[container.RAW, 0], "deflate": CODERS[container.DEFLATE, 0]}


def for_header(header: container.Header) -> Coder:
    """The coder of a parsed header (``container.parse`` has checked the pair)."""
    return CODERS[header.kind, header.coder]


def payload_name(coder_or_header) -> str:
    """What made a payload, as users name it: a method ("network",
    "mixer+network", "mixer"), a stored kind ("raw", "deflate"), or for
    coder 2 in a network payload "mixer+network (one state)"; a format-3
    file's sections by theirs, joined ("mixer+network, constant")."""
    sections = getattr(coder_or_header, "sections", ())
    if sections:
        return ", ".join(section_name(s.kind, s.coder) for s in sections)
    coder = coder_or_header if isinstance(coder_or_header, Coder) else for_header(coder_or_header)
    if coder.method:
        return coder.method
    return container.KINDS[coder.kind] if coder.stored else f"{MIXER_NETWORK} (one state)"


def section_name(kind: int, coder_id: int) -> str:
    """A format-3 section's coding, as users name it."""
    if (kind, coder_id) in CODERS:
        return payload_name(CODERS[kind, coder_id])
    return container.SECTION_KINDS[kind]
