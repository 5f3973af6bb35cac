"""pixzip demo: the main job on the bundled sample photo, with sizes against PNG."""
from __future__ import annotations

from pathlib import Path

from ..codec import api as codec
from ..codec.format.images import read_image

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "astronaut.png"
SAMPLE_CREDIT = "NASA photo of Eileen Collins (public domain), via scikit-image"


def run(model=None, image=SAMPLE, on_warm_up=None) -> dict:
    """Compress the sample at the default level (the mixer with the network's
    counts; ``model`` overrides the level's network), decode it, check it is
    pixel-exact, and measure PNG (Pillow, optimize) on it.
    The kernels are loaded (compiled, the first time) before the timed round
    trip; ``on_warm_up`` is called just before that."""
    from ..codec.levels import level_choice
    from .bench import pixzip_round_trip, png
    pixels = read_image(image)
    method, alias = level_choice(None)
    net = codec.load_model(model if model is not None else alias)
    if on_warm_up is not None:
        on_warm_up()
    codec.warm_up(net, method)
    data, t_enc, t_dec = pixzip_round_trip(image, pixels, net, method=method)
    h, w, c = pixels.shape
    return {"image": str(image), "width": w, "height": h, "channels": c, "model": net.name,
            "pixzip_bytes": len(data), "png_bytes": len(png(pixels)[0]), "encode_s": t_enc, "decode_s": t_dec,
            "subpixels": pixels.size}
