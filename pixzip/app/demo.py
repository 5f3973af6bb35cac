"""pixzip demo: the main job on the bundled sample photo, with sizes against PNG."""
from __future__ import annotations

from pathlib import Path

from ..codec import api as codec
from ..codec.format.images import read_image

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "astronaut.png"
SAMPLE_CREDIT = "NASA photo of Eileen Collins (public domain), via scikit-image"
COMPILE_TIME = "about a minute on a 2-core machine"     # the first demo's compile (benchmarks/first_use.py)


def run(model=None, image=SAMPLE, on_compile=None) -> dict:
    """Compress the sample at the default level (the mixer alone; with
    ``model``, the mixer with that network's counts), decode it, check it is
    pixel-exact, and measure PNG (Pillow, optimize) on it.
    The kernels are loaded before the timed round trip, and compiled if the
    cache does not hold them (a first use): then ``on_compile`` is called
    first, and the result's ``compile_s`` says how long it took (else 0)."""
    import time

    from ..codec import kernel_cache
    from ..codec.levels import MIXER, MIXER_NETWORK, level_choice
    from .bench import pixzip_round_trip, png
    pixels = read_image(image)
    method, alias, _ = level_choice(None)
    name = model if model is not None else alias
    if name is not None and method == MIXER:       # a model named: the mixer with its counts (as compress does)
        method = MIXER_NETWORK
    net = codec.load_model(name) if name is not None else None
    compiling = not kernel_cache.compiled(method)
    if compiling:
        if on_compile is not None:
            on_compile()
        if net is not None:       # the network decoder's kernels, on the other core
            kernel_cache.precompile_decoder(name if isinstance(name, str) else None)
    t = time.perf_counter()
    codec.warm_up(net, method)
    compile_s = time.perf_counter() - t if compiling else 0.0
    data, t_enc, t_dec = pixzip_round_trip(image, pixels, net, method=method)
    h, w, c = pixels.shape
    return {"image": str(image), "width": w, "height": h, "channels": c, "model": net.name if net else None,
            "pixzip_bytes": len(data), "png_bytes": len(png(pixels)[0]), "encode_s": t_enc, "decode_s": t_dec,
            "subpixels": pixels.size, "compile_s": compile_s}
