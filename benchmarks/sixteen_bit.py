"""The 16-bit coder (``pixzip.codec.deep``) against PNG 16-bit, JPEG-XL
lossless and a high/low byte split through the 8-bit mixer, in bits per
sub-pixel, on 16-bit images made here.

    python benchmarks/sixteen_bit.py [--images 6] [--size 512] [--level6]

These are NOT camera files.  No real 16-bit photos are at hand, so each
test image is made from an 8-bit photo of photos-train (never Kodak) with
a sensor-like noise model (``SENSOR``):

1. the 8-bit sRGB values, linearised (the sRGB curve), and averaged over
   2x2 blocks (a 2x downscale: the linear values fall between the 8-bit
   steps, so the result is not x257 steps);
2. the linear signal times ``full_well`` electrons (at white), drawn as
   Poisson shot noise, plus Gaussian read noise of ``read_noise`` electrons,
   each colour independently (no demosaicking), with a fixed seed;
3. kinds: "linear" (the electrons times 65535 / full_well, rounded: a
   linear 16-bit sensor, as a scientific camera writes); "developed" (the
   noisy linear signal through the sRGB curve to 16 bits, as a raw
   converter's 16-bit TIFF); "12-bit" (a 12-bit ADC, kept as v << 4 and
   against its twin of the unshifted 12-bit values); "x257" (the 8-bit
   photo's values times 257, against the 8-bit image through the mixer).

The noise that results is measured and printed (its standard deviation in
16-bit units at mid-grey).  Every coder's output is decoded and checked.
Sizes: the payload for pixzip's coders (no container), the whole file for
PNG and JPEG-XL.
"""
from __future__ import annotations

import glob
import os
import statistics
import subprocess
import time

import click
import numpy as np
from PIL import Image

PHOTOS = "/work/shared/data/photos-train"
SENSOR = {"full_well": 20000, "read_noise": 4.0, "seed": 2025}


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0, 1)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * v ** (1 / 2.4) - 0.055)


def photos(count: int, size: int) -> list[str]:
    """``count`` photos-train files (never Kodak) large enough for a 2x
    downscaled size x size crop, spread over the sorted list."""
    files = [f for f in sorted(glob.glob(os.path.join(PHOTOS, "*.png"))) if "kodak" not in f.lower()]
    big = [f for f in files if min(Image.open(f).size) >= 2 * size]
    step = max(1, len(big) // count)
    return big[::step][:count]


def linear_crop(path: str, size: int, gray: bool) -> np.ndarray:
    """The photo's centre 2*size crop, linearised and averaged over 2x2 blocks: float64 (size, size, C) in [0, 1]."""
    im = Image.open(path).convert("RGB")
    a = np.asarray(im, np.float64) / 255
    h, w, _ = a.shape
    y0, x0 = (h - 2 * size) // 2, (w - 2 * size) // 2
    lin = srgb_to_linear(a[y0:y0 + 2 * size, x0:x0 + 2 * size])
    if gray:
        lin = lin @ np.array([0.2126, 0.7152, 0.0722])[:, None]
    return lin.reshape(size, 2, size, 2, -1).mean(axis=(1, 3))


def sensor(lin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Electrons: Poisson shot noise on lin * full_well, plus Gaussian read noise (float64)."""
    fw = SENSOR["full_well"]
    return rng.poisson(lin * fw).astype(np.float64) + rng.normal(0, SENSOR["read_noise"], lin.shape)


def kinds(path: str, size: int, gray: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The 16-bit test images made of one photo (uint16 (size, size, C))."""
    lin = linear_crop(path, size, gray)
    e = sensor(lin, rng)
    fw = SENSOR["full_well"]
    return {
        "linear": np.clip(np.rint(e * 65535 / fw), 0, 65535).astype(np.uint16),
        "developed": np.clip(np.rint(linear_to_srgb(e / fw) * 65535), 0, 65535).astype(np.uint16),
        "12-bit": np.clip(np.rint(e * 4095 / fw), 0, 4095).astype(np.uint16) << 4,
    }


def measured_noise(rng: np.random.Generator) -> dict[str, float]:
    """The noise's standard deviation in 16-bit units, on a flat mid-grey
    (linear 0.18, and 0.5 for "developed", i.e. sRGB mid-grey)."""
    flat = np.full((256, 256, 1), 0.18)
    lin = np.rint(sensor(flat, rng) * 65535 / SENSOR["full_well"])
    grey = np.full((256, 256, 1), float(srgb_to_linear(np.array(0.5))))
    dev = np.rint(linear_to_srgb(sensor(grey, rng) / SENSOR["full_well"]) * 65535)
    return {"linear at 0.18": float(lin.std()), "developed at sRGB 0.5": float(dev.std())}


# ---------------------------------------------------------------- the coders, each checked


def deep_bits(img: np.ndarray) -> tuple[int, float, float]:
    from pixzip.codec import deep
    t = time.perf_counter()
    p = deep.encode(img)
    te = time.perf_counter() - t
    t = time.perf_counter()
    back = deep.decode(p, *img.shape)
    td = time.perf_counter() - t
    assert np.array_equal(back, img), "deep round trip"
    return 8 * len(p), te, td


def mixer_bits(img8: np.ndarray, level: int) -> int:
    import pixzip
    data = pixzip.compress(img8 if img8.shape[2] == 3 else img8[..., 0], level=level)
    back = pixzip.decompress(data)
    assert np.array_equal(back.reshape(img8.shape), img8), "mixer round trip"
    return 8 * len(data)


def split_bits(img: np.ndarray, level: int) -> int:
    """The high byte and the low byte, each an 8-bit image through pixzip.compress."""
    return mixer_bits((img >> 8).astype(np.uint8), level) + mixer_bits((img & 255).astype(np.uint8), level)


def png_bits(img: np.ndarray) -> int:
    import imagecodecs
    a = img if img.shape[2] == 3 else img[..., 0]
    data = imagecodecs.png_encode(a, level=9)
    assert np.array_equal(imagecodecs.png_decode(data), a), "PNG round trip"
    return 8 * len(data)


def jxl_bits(img: np.ndarray) -> int:
    import imagecodecs
    a = img if img.shape[2] == 3 else img[..., 0]
    data = imagecodecs.jpegxl_encode(a, lossless=True, effort=9)
    assert np.array_equal(imagecodecs.jpegxl_decode(data), a), "JPEG-XL round trip"
    return 8 * len(data)


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


@click.command()
@click.option("--images", default=6, show_default=True, help="photos to make images of")
@click.option("--size", default=512, show_default=True, help="crop side, after the 2x downscale")
@click.option("--level6", is_flag=True, help="also the split through level 6 (slow)")
def main(images: int, size: int, level6: bool) -> None:
    rng = np.random.default_rng(SENSOR["seed"])
    print(f"sensor model: {SENSOR}; noise std in 16-bit units: "
          + ", ".join(f"{k} {v:.0f}" for k, v in measured_noise(rng).items()))
    print(f"CPU: {cpu_name()}; crops {size}x{size}; files: " + ", ".join(os.path.basename(f)
                                                                       for f in photos(images, size)))
    rows: dict[str, dict[str, list[float]]] = {}
    speed: list[tuple[float, float, float]] = []

    def add(case: str, coder: str, bits: float) -> None:
        rows.setdefault(case, {}).setdefault(coder, []).append(bits)

    for path in photos(images, size):
        for gray in (True, False):
            name = "gray" if gray else "RGB"
            made = kinds(path, size, gray, rng)
            for kind in ("linear", "developed"):
                img = made[kind]
                case = f"{kind} {name}"
                b, te, td = deep_bits(img)
                speed.append((img.nbytes, te, td))
                add(case, "deep", b / img.size)
                add(case, "split -1", split_bits(img, 1) / img.size)
                if level6:
                    add(case, "split -6", split_bits(img, 6) / img.size)
                add(case, "PNG", png_bits(img) / img.size)
                add(case, "JPEG-XL e9", jxl_bits(img) / img.size)
            # the narrower cases: 12 bits shifted by 4 against the 12-bit values; 8-bit x257 against 8 bits
            img = made["12-bit"]
            add(f"12-bit<<4 {name}", "deep", deep_bits(img)[0] / img.size)
            add(f"12-bit<<4 {name}", "deep, 12-bit twin", deep_bits(img >> 4)[0] / img.size)
            add(f"12-bit<<4 {name}", "JPEG-XL e9", jxl_bits(img) / img.size)
            add(f"12-bit<<4 {name}", "PNG", png_bits(img) / img.size)
            rgb8 = np.asarray(Image.open(path).convert("L" if gray else "RGB"))
            h, w = rgb8.shape[:2]
            eight = rgb8[(h - size) // 2:(h - size) // 2 + size, (w - size) // 2:(w - size) // 2 + size]
            eight = eight.reshape(size, size, -1)
            img = eight.astype(np.uint16) * 257
            add(f"8-bit x257 {name}", "deep", deep_bits(img)[0] / img.size)
            add(f"8-bit x257 {name}", "mixer -1 on the 8-bit twin", mixer_bits(eight, 1) / img.size)
            add(f"8-bit x257 {name}", "JPEG-XL e9", jxl_bits(img) / img.size)
            add(f"8-bit x257 {name}", "PNG", png_bits(img) / img.size)
            print(f"  {os.path.basename(path)} done", flush=True)
    print("\nbits per sub-pixel, medians over the images (sizes: payloads for pixzip's coders, files for PNG, JPEG-XL)")
    for case, coders in rows.items():
        print(f"{case:22s} " + "  ".join(f"{c}: {statistics.median(v):.3f}" for c, v in coders.items()))
    mb = sum(s[0] for s in speed) / 1e6
    print(f"\ndeep coder speed: encode {mb / sum(s[1] for s in speed):.2f} MB/s, "
          f"decode {mb / sum(s[2] for s in speed):.2f} MB/s (16-bit samples, 2 bytes each; one core, shared machine)")


if __name__ == "__main__":
    main()
