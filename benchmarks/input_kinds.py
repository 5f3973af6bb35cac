"""The kinds of image files users have, made from photos, and what pixzip
does with each: kept (and its bits per sub-pixel at -6 and -9 against PNG
and JPEG-XL on the same picture) or refused, with its message.

    python benchmarks/input_kinds.py OUT_DIR                  # make the files, run pixzip, print the table
    python benchmarks/input_kinds.py OUT_DIR --make-only      # only make the files
    python benchmarks/input_kinds.py OUT_DIR --pixzip "python -m pixzip" --size 256

The files are made from photos of ``photos-train`` (never Kodak, the test
set), scaled down to 1.25 times ``--size`` columns (Lanczos) and cropped to
``--size`` columns (3:4) in the middle, into OUT_DIR:

- rgba_cutout.png: a photo cut out with a soft (feathered) elliptic alpha;
  the colours under alpha 0 are the photo's, kept as they are.
- rgba_icon.png: a screenshot-like icon sheet: flat rounded shapes and text,
  drawn at 4x and downsampled (soft edges), on a transparent background.
- la.png: the cut-out in gray, with its alpha.
- p.png: the photo quantized to 256 colours (Pillow, Floyd-Steinberg), no transparency.
- p_trns.png: the cut-out quantized to 255 colours, index 255 transparent where alpha < 128.
- p.gif: the same as a single-frame GIF.
- gray16.png, rgb16.png, rgb16.tif: 16-bit images made from the 8-bit photo
  with a sensor-like noise model (signal linearized, photon (Poisson) noise
  at a full well of 20,000 electrons, Gaussian read noise of 3 electrons,
  gamma-encoded again); typical published values of a consumer sensor at
  base ISO, not measured here. These are NOT camera files.
- bilevel.png: the photo in gray, dithered to 1-bit (Floyd-Steinberg).
- cmyk.tif: the photo as CMYK (refused by name).
- animated.gif: 12 frames panning over the photo (refused by name).
- photo.jpg: the photo as a JPEG of quality 85 (kept, with the lossy warning).

Bits per sub-pixel: 8 x file bytes / (H x W x channels of the picture; a
palette or 1-bit picture has one channel), whole files.  PNG: Pillow with
optimize=True (16-bit RGB: imagecodecs at level 9, as Pillow cannot write
it).  JPEG-XL: ``cjxl -d 0 -e 9`` of that PNG when cjxl is on PATH, else
imagecodecs' lossless JPEG-XL at effort 9 (a palette picture as its colours).
Every pixzip archive is decompressed and compared with the file (mode,
samples, palette, transparency) before its size is counted.
"""
from __future__ import annotations

import io
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pixzip.codec.format import picture as pictures
from pixzip.codec.format.images import read_picture_file
from pixzip.errors import PixzipError

PHOTO = str(Path(__file__).resolve().parents[2] / "shared/data/photos-train/imagecompression-info_flower_foveon.png")  # beside the repository
FULL_WELL, READ_NOISE, GAMMA = 20000.0, 3.0, 2.2


def photo_crop(path: Path, width: int) -> Image.Image:
    if "kodak" in path.name.lower():
        raise click.UsageError("never Kodak: it is the test set")
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = 1.25 * width / im.width           # most of the scene, not a detail of it
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
        w, h = width, width * 3 // 4
        x, y = (im.width - w) // 2, (im.height - h) // 2
        return im.crop((x, y, x + w, y + h))


def soft_alpha(w: int, h: int) -> np.ndarray:
    """An elliptic alpha with a feathered edge: 255 inside, 0 outside, a ramp between."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((xx - w / 2) / (0.42 * w), (yy - h / 2) / (0.42 * h))
    return np.clip((1.0 - r) / 0.12 * 255, 0, 255).round().astype(np.uint8)


def icon_sheet(w: int, h: int) -> Image.Image:
    big = Image.new("RGBA", (4 * w, 4 * h), (0, 0, 0, 0))
    d = ImageDraw.Draw(big)
    rng = np.random.default_rng(0)
    palette = [(52, 120, 246), (255, 149, 0), (52, 199, 89), (255, 59, 48), (88, 86, 214), (40, 40, 40)]
    cw, ch = w, 4 * h // 3                      # 4 x 3 cells of the 4x canvas
    for i in range(4):
        for j in range(3):
            x, y, m = i * cw, j * ch, cw // 12
            colour = palette[int(rng.integers(len(palette)))]
            d.rounded_rectangle((x + m, y + m, x + cw - m, y + ch - 3 * m), radius=2 * m, fill=colour + (255,))
            d.ellipse((x + 3 * m, y + 2 * m, x + cw - 3 * m, y + ch - 5 * m), fill=(255, 255, 255, 230))
            d.text((x + m, y + ch - 2.6 * m), f"App {3 * i + j}", fill=(20, 20, 20, 255), font_size=2 * m)
    return big.resize((w, h), Image.LANCZOS)


def sensor_16_bit(rgb8: np.ndarray, seed: int = 0) -> np.ndarray:
    """16-bit samples from 8-bit ones with photon and read noise (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    x = (rgb8.astype(np.float64) + rng.uniform(-0.5, 0.5, rgb8.shape)) / 255.0
    electrons = np.clip(x, 0, 1) ** GAMMA * FULL_WELL
    noisy = rng.poisson(electrons) + rng.normal(0, READ_NOISE, rgb8.shape)
    return (np.clip(noisy / FULL_WELL, 0, 1) ** (1 / GAMMA) * 65535).round().astype(np.uint16)


def make_files(out: Path, photo: Path, width: int) -> list[tuple[str, str]]:
    """The sample files in ``out``: (kind, file name)."""
    import imagecodecs
    out.mkdir(parents=True, exist_ok=True)
    im = photo_crop(photo, width)
    rgb = np.asarray(im)
    h, w = rgb.shape[:2]
    alpha = soft_alpha(w, h)
    cutout = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    made = []

    def save(kind, name, image, **kw):
        image.save(out / name, **kw)
        made.append((kind, name))

    save("RGBA photo cut-out, soft alpha", "rgba_cutout.png", cutout)
    save("RGBA icon sheet (screenshot-like)", "rgba_icon.png", icon_sheet(w, h))
    save("LA (gray cut-out)", "la.png", Image.fromarray(np.dstack([np.asarray(im.convert("L")), alpha]), "LA"))
    save("P, 256 colours", "p.png", im.quantize(256, dither=Image.Dither.FLOYDSTEINBERG))
    p = np.asarray(im.quantize(255, dither=Image.Dither.FLOYDSTEINBERG)).copy()
    p[alpha < 128] = 255
    quantized = im.quantize(255, dither=Image.Dither.FLOYDSTEINBERG)
    colours = quantized.getpalette("RGB")[:3 * 255] + [0, 0, 0]
    trns = Image.fromarray(p, "P")
    trns.putpalette(colours)
    save("P with transparency (tRNS)", "p_trns.png", trns, transparency=255)
    save("P with transparency, GIF", "p.gif", trns, transparency=255, optimize=False)
    gray16 = sensor_16_bit(np.asarray(im.convert("L")), 1)
    (out / "gray16.png").write_bytes(imagecodecs.png_encode(gray16, level=9))
    made.append(("16-bit gray (made: photo + noise model)", "gray16.png"))
    rgb16 = sensor_16_bit(rgb, 2)
    (out / "rgb16.png").write_bytes(imagecodecs.png_encode(rgb16, level=9))
    made.append(("16-bit RGB PNG (made: photo + noise model)", "rgb16.png"))
    (out / "rgb16.tif").write_bytes(imagecodecs.tiff_encode(rgb16, compression="deflate"))
    made.append(("16-bit RGB TIFF (same pixels)", "rgb16.tif"))
    save("1-bit (dithered photo)", "bilevel.png", im.convert("L").convert("1"))
    save("CMYK TIFF", "cmyk.tif", im.convert("CMYK"))
    frames = [photo_crop(photo, width + 2 * k).resize((w, h)).quantize(256) for k in range(12)]
    save("animated GIF, 12 frames", "animated.gif", frames[0], save_all=True, append_images=frames[1:])
    save("JPEG photo (lossy source)", "photo.jpg", im, quality=85)
    return made


def png_bytes(p: pictures.Picture) -> bytes:
    import imagecodecs
    if p.mode == "RGB;16":
        return imagecodecs.png_encode(p.pixels, level=9)
    buf = io.BytesIO()
    pictures.to_pil(p).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def colours_of(p: pictures.Picture) -> np.ndarray:
    """The samples JPEG-XL codes: a palette picture's colours (with alpha
    when it has transparency), a 1-bit picture as 0/255 gray, else its own."""
    if p.mode == "P":
        return np.asarray(pictures.to_pil(p).convert("RGBA" if p.transparency is not None else "RGB"))
    a = p.pixels[..., 0] if p.channels == 1 else p.pixels
    return a * np.uint8(255) if p.mode == "1" else a


def jxl_bytes(p: pictures.Picture, tmp: Path) -> tuple[int | None, str]:
    cjxl = shutil.which("cjxl")
    if cjxl:
        src, dst = tmp / "in.png", tmp / "out.jxl"
        src.write_bytes(png_bytes(p) if p.mode != "P" else _png_of(colours_of(p)))
        subprocess.run([cjxl, "-d", "0", "-e", "9", "--quiet", str(src), str(dst)], check=True,
                       capture_output=True)
        return dst.stat().st_size, "cjxl -d 0 -e 9"
    try:
        import imagecodecs
        return len(imagecodecs.jpegxl_encode(colours_of(p), lossless=True, effort=9)), "imagecodecs jpegxl effort 9"
    except Exception as e:   # no libjxl in this imagecodecs
        return None, f"no JPEG-XL ({e.__class__.__name__})"


def _png_of(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def run_pixzip(pixzip: list[str], src: Path, level: int, tmp: Path) -> tuple[int | None, str]:
    """(archive bytes, "") when pixzip keeps the file exactly at this level, else (None, its message)."""
    pxz, back = tmp / f"{src.name}.{level}.pxz", tmp / f"back{level}{src.suffix if src.suffix != '.jpg' else '.png'}"
    r = subprocess.run([*pixzip, "compress", f"-{level}", "-f", "-o", str(pxz), str(src)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        return None, r.stderr.strip().removeprefix("pixzip: ")
    warning = " ".join(line.removeprefix("pixzip: warning: ") for line in r.stderr.splitlines() if "warning" in line)
    r = subprocess.run([*pixzip, "decompress", "-f", "-o", str(back), str(pxz)], capture_output=True, text=True)
    if r.returncode != 0:
        return None, "decompress failed: " + r.stderr.strip()
    if not pictures.same(read_picture_file(src)[0], read_picture_file(back)[0]):
        return None, "NOT EXACT: the decompressed file differs"
    return pxz.stat().st_size, warning


@click.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--photo", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=PHOTO, show_default=True, help="The photo the files are made from (never a Kodak one).")
@click.option("--size", default=256, show_default=True, help="Width of the crop (height: 3/4 of it).")
@click.option("--pixzip", "pixzip_cmd", default="pixzip", show_default=True, help="The pixzip command to run.")
@click.option("--levels", default="6,9", show_default=True, help="pixzip levels to measure.")
@click.option("--make-only", is_flag=True, help="Only make the files.")
def main(out, photo, size, pixzip_cmd, levels, make_only):
    made = make_files(out, photo, size)
    print(f"made {len(made)} files in {out} from {photo.name} ({size} wide)")
    if make_only:
        return
    pixzip = shlex.split(pixzip_cmd)
    levels = [int(v) for v in levels.split(",")]
    head = ["kind", "file", "outcome", *(f"pixzip -{v}" for v in levels), "PNG", "JPEG-XL"]
    print("\nbits per sub-pixel (8 x bytes / samples of the picture)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    notes, jxl_how = [], ""
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for kind, name in made:
            src = out / name
            try:
                p, _ = read_picture_file(src)
            except PixzipError as e:
                p = None
                refusal = str(e)
            results = [run_pixzip(pixzip, src, v, tmp) for v in levels]
            if p is None or any(size is None for size, _ in results):
                message = next((m for s, m in results if s is None), refusal if p is None else "")
                message = message.replace(f"{src}: ", f"{name}: ")
                print(f"| {kind} | {name} | refused: {message} |" + " |" * (len(head) - 3))
                continue
            n = p.pixels.size
            bits = [f"{8 * s / n:.3f}" for s, _ in results]
            jxl, jxl_how = jxl_bytes(p, tmp)
            print(f"| {kind} | {name} | kept ({p.mode}, {p.width}x{p.height}) | " + " | ".join(bits) +
                  f" | {8 * len(png_bytes(p)) / n:.3f} | {'-' if jxl is None else f'{8 * jxl / n:.3f}'} |")
            notes += [m.replace(f"{src}: ", f"{name}: ") for s, m in results[:1] if m]
    print(f"\nJPEG-XL: {jxl_how}")
    for note in notes:
        print(f"pixzip's warning: {note}")


if __name__ == "__main__":
    sys.exit(main())
