"""Data loading: image folders in every format Pillow reads, npz arrays, crops."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pixzip.learn.datasets import DataError, load_images


def write_images(folder, rng):
    folder.mkdir()
    rgb = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (16, 18), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(rgb).save(folder / "b.bmp")
    Image.fromarray(rgb).save(folder / "c.tiff")
    Image.fromarray(rgb).save(folder / "d.webp", lossless=True)
    Image.fromarray(rgb).save(folder / "e.jpg", quality=95)
    Image.fromarray(gray).save(folder / "f.png")
    (folder / "notes.txt").write_text("not an image")
    return rgb, gray


def test_folder_of_mixed_formats(tmp_path, rng):
    rgb, gray = write_images(tmp_path / "imgs", rng)
    data = load_images([tmp_path / "imgs"])
    assert len(data) == 6 and data.colors == 3
    assert data.labels is None
    by_name = dict(zip([n.rsplit("/", 1)[-1] for n in data.names], data.images))
    for lossless in ("a.png", "b.bmp", "c.tiff", "d.webp"):
        assert np.array_equal(by_name[lossless], rgb)
    assert np.array_equal(by_name["f.png"], np.repeat(gray[..., None], 3, axis=2))


def test_grayscale_only(tmp_path, rng):
    (tmp_path / "g").mkdir()
    g = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    Image.fromarray(g).save(tmp_path / "g" / "x.png")
    data = load_images([tmp_path / "g"])
    assert data.colors == 1 and np.array_equal(data.images[0][..., 0], g)


def test_npz_with_and_without_labels(tmp_path, rng):
    x3 = rng.integers(0, 256, (7, 4, 5), dtype=np.uint8)
    np.savez(tmp_path / "gray.npz", x=x3, y=np.arange(7))
    x4 = rng.integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", x=x4)
    g = load_images([tmp_path / "gray.npz"])
    assert g.colors == 1 and len(g) == 7 and g.labels.tolist() == list(range(7))
    r = load_images([tmp_path / "rgb.npz"])
    assert r.colors == 3 and r.labels is None and np.array_equal(r.images[2], x4[2])


def test_npz_labels_longer_than_images_are_trimmed(tmp_path, rng):
    np.savez(tmp_path / "p.npz", x=rng.integers(0, 256, (4, 2, 2), dtype=np.uint8), y=np.arange(10))
    assert load_images([tmp_path / "p.npz"]).labels.tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("make,problem", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"garbage"), "not a readable image"),
    (lambda p: p.write_bytes(b""), "not a readable image"),
])
def test_bad_paths_name_the_file(tmp_path, make, problem):
    p = tmp_path / "bad.png"
    make(p)
    with pytest.raises(DataError, match=problem) as e:
        load_images([p])
    assert str(p) in str(e.value)


def test_bad_npz(tmp_path):
    np.savez(tmp_path / "f.npz", x=np.zeros((2, 3, 3), dtype=np.float32))
    with pytest.raises(DataError, match="uint8"):
        load_images([tmp_path / "f.npz"])


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(1, 20), st.integers(1, 20)), min_size=1, max_size=6),
       crop=st.integers(1, 8), seed=st.integers(0, 2**32 - 1), step=st.integers(0, 10**6),
       world=st.sampled_from([1, 2, 4]), flip=st.booleans())
def test_a_steps_crops_depend_on_seed_and_step_alone_and_split_among_ranks(sizes, crop, seed, step, world, flip):
    from pixzip.learn.crops import CropPlan, StepBatches
    fits = [i for i, (h, w) in enumerate(sizes) if h >= crop and w >= crop]
    if not fits:
        with pytest.raises(DataError, match=f"{crop}x{crop}"):
            CropPlan(sizes, crop, seed, flip)
        return
    plan = CropPlan(sizes, crop, seed, flip)
    batch = plan.batch(step, 4)
    assert batch == CropPlan(sizes, crop, seed, flip).batch(step, 4)   # no state carried between calls
    for c in batch:   # every crop inside an image that can hold it
        assert c.index in fits and 0 <= c.y <= sizes[c.index][0] - crop and 0 <= c.x <= sizes[c.index][1] - crop
        assert flip or not c.flip
    parts = [next(iter(StepBatches(plan, 4, step, step + 1, r, world))) for r in range(world)]
    assert [c for part in parts for c in part] == batch     # the ranks' slices are the global batch


def test_a_batch_that_does_not_divide_among_ranks_is_refused():
    from pixzip.learn.crops import rank_slice
    with pytest.raises(ValueError, match="5 does not divide among 2"):
        rank_slice(5, 0, 2)


def test_whole_images_need_one_size():
    from pixzip.learn.crops import CropPlan
    with pytest.raises(DataError, match="--crop"):
        CropPlan([(4, 4), (5, 4)], crop=None, seed=0)
    assert CropPlan([(4, 5), (4, 5)], crop=None, seed=0).crop == (4, 5)


def with_downscaled(data, levels):
    """The reference of datasets.Downscaled, made at once: ``data`` and its
    copies downscaled by 2, 4, ... 2**levels (rounded box averages), with
    their labels and names; copies that would be empty are left out."""
    from pixzip.learn.datasets import ImageSet
    images, names = list(data.images), list(data.names)
    labels = list(data.labels) if data.labels is not None else None
    for level in range(1, levels + 1):
        f = 2 ** level
        for i, im in enumerate(data.images):
            h, w = im.shape[0] // f, im.shape[1] // f
            if h == 0 or w == 0:
                continue
            box = im[: h * f, : w * f].reshape(h, f, w, f, -1).astype(np.uint32).sum(axis=(1, 3))
            images.append(((box + f * f // 2) // (f * f)).astype(np.uint8))
            names.append(f"{data.names[i] if data.names else i}@1/{f}")
            if labels is not None:
                labels.append(data.labels[i])
    return ImageSet(images, np.array(labels, dtype=np.int64) if labels is not None else None, names)


def test_downscaled_copies_are_box_averages_with_their_labels(rng):
    from pixzip.learn.datasets import Downscaled, ImageSet
    imgs = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(9, 12, 3), (3, 2, 3)]]
    d = Downscaled(ImageSet(imgs, np.array([4, 7]), ["a", "b"]), 2)
    images = [d.load(i) for i in range(len(d))]
    # a: 1/2 and 1/4; b: 1/2 only (1/4 would be empty)
    assert [im.shape for im in images] == [(9, 12, 3), (3, 2, 3), (4, 6, 3), (1, 1, 3), (2, 3, 3)]
    assert [tuple(s) for s in d.sizes] == [im.shape[:2] for im in images]
    assert d.labels.tolist() == [4, 7, 4, 7, 4] and d.names[2:] == ["a@1/2", "b@1/2", "a@1/4"]
    block = imgs[0][2:4, 4:6].astype(float).mean(axis=(0, 1))
    assert np.array_equal(images[2][1, 2], np.floor(block + 0.5).astype(np.uint8))
    assert len(Downscaled(ImageSet(imgs), 0)) == 2


# -- the lazy source: listed from headers, decoded one image at a time --------------------------------------
def write_kinds(folder, rng):
    """One file of every kind the reader takes: RGB and gray as they are,
    files it refuses (alpha, palette, a transparent colour, 16-bit gray)
    converted, a TIFF its Orientation turns."""
    folder.mkdir()
    rgb = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (16, 18), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(rgb).save(folder / "b.jpg", quality=90)
    Image.fromarray(gray).save(folder / "c.png")
    Image.fromarray(rng.integers(0, 256, (12, 14, 4), dtype=np.uint8)).save(folder / "d.png")
    Image.fromarray(rgb).quantize(16).save(folder / "e.png")
    Image.fromarray(gray).save(folder / "f.png", transparency=7)
    Image.fromarray(rng.integers(0, 65536, (9, 11), dtype=np.uint16)).save(folder / "g.png")
    Image.fromarray(rgb[:5, :7]).save(folder / "h.tif", tiffinfo={274: 6})     # turned: read as 7x5
    return ["d.png (RGBA)", "e.png (P)", "f.png (L)", "g.png (I;16)"]


@pytest.mark.parametrize("colors", [None, 1, 3])
@pytest.mark.parametrize("downscale", [0, 2])
def test_the_lazy_source_reads_the_pixels_load_images_reads(tmp_path, rng, colors, downscale):
    from pixzip.learn.datasets import open_source
    write_kinds(tmp_path / "imgs", rng)
    with pytest.warns(UserWarning):
        memory = with_downscaled(load_images([tmp_path / "imgs"], colors=colors), downscale)
    with pytest.warns(UserWarning):
        lazy = open_source([tmp_path / "imgs"], colors=colors, downscale=downscale)
    assert len(lazy) == len(memory) and lazy.colors == memory.colors and list(lazy.names) == memory.names
    assert [tuple(s) for s in lazy.sizes] == memory.sizes
    for i in range(len(lazy)):
        assert np.array_equal(lazy.load(i), memory.images[i]), memory.names[i]


def test_the_lazy_source_is_listed_from_headers_without_decoding_a_pixel(tmp_path, rng, monkeypatch):
    from pixzip.learn import datasets
    write_kinds(tmp_path / "imgs", rng)
    monkeypatch.setattr(datasets, "decode", lambda *a, **k: pytest.fail("decoded while listing"))
    from PIL import ImageFile
    for cls in (Image.Image, ImageFile.ImageFile):
        monkeypatch.setattr(cls, "load", lambda *a, **k: pytest.fail("decoded while listing"))
    with pytest.warns(UserWarning):
        src = datasets.open_source([tmp_path / "imgs"])
    sizes = [(20, 24), (20, 24), (16, 18), (12, 14), (20, 24), (16, 18), (9, 11), (7, 5)]
    assert [tuple(s) for s in src.sizes] == sizes


def test_one_warning_names_the_files_that_are_converted(tmp_path, rng):
    from pixzip.learn.datasets import open_source
    converted = write_kinds(tmp_path / "imgs", rng)
    with pytest.warns(UserWarning) as caught:
        open_source([tmp_path / "imgs"])
    assert len(caught) == 1
    text = str(caught[0].message)
    assert text.startswith("4 image(s) converted to 8-bit RGB")
    assert all(str(tmp_path / "imgs" / c) in text for c in converted[:3]) and "1 more" in text


def test_npz_arrays_stay_in_memory_and_mix_with_files(tmp_path, rng):
    from pixzip.learn.datasets import ImageSet, open_source
    (tmp_path / "f").mkdir()
    Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)).save(tmp_path / "f" / "a.png")
    np.savez(tmp_path / "g.npz", x=rng.integers(0, 256, (3, 5, 4), dtype=np.uint8))
    paths = [tmp_path / "g.npz", tmp_path / "f", tmp_path / "g.npz"]
    src, memory = open_source(paths), load_images(paths)
    assert src.colors == 3 and len(src) == 7 and isinstance(src.parts[0], ImageSet)
    assert all(np.array_equal(src.load(i), memory.images[i]) for i in range(7))


def test_a_crop_loader_over_the_lazy_source_gives_the_batches_of_the_in_memory_set(tmp_path, rng):
    from pixzip.learn import crops
    from pixzip.learn.datasets import open_source
    write_kinds(tmp_path / "imgs", rng)
    with pytest.warns(UserWarning):
        memory = with_downscaled(load_images([tmp_path / "imgs"]), 1)
        lazy = open_source([tmp_path / "imgs"], downscale=1)
    plan = crops.CropPlan(lazy.sizes, 5, seed=7, flip=True)
    for workers in (0, 1):
        a = list(crops.loader(memory, crops.CropPlan(memory.sizes, 5, seed=7, flip=True), 6, 2, 6))
        b = list(crops.loader(lazy, plan, 6, 2, 6, workers=workers))
        assert len(a) == len(b) == 4
        assert all(x.equal(y) and u.equal(v) for (x, u), (y, v) in zip(a, b))


def test_the_lazy_source_pickles_small(tmp_path, rng):
    import pickle

    from pixzip.learn.datasets import open_source
    (tmp_path / "f").mkdir()
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "f" / f"{i}.png")
    src = open_source([tmp_path / "f"], downscale=1)
    assert len(pickle.dumps(src)) < 20 * 64 * 64 * 3 / 20


def test_an_image_that_cannot_be_read_in_a_loader_worker_is_one_line_naming_it(tmp_path, rng):
    from pixzip.learn import crops
    from pixzip.learn.datasets import open_source
    (tmp_path / "f").mkdir()
    path = tmp_path / "f" / "a.png"
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    src = open_source([tmp_path / "f"])
    path.write_bytes(path.read_bytes()[:60])       # cut short after it was listed
    with pytest.raises(DataError) as e:
        list(crops.loader(src, crops.CropPlan(src.sizes, 4, seed=0), 2, 0, 2, workers=1))
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_file_whose_size_changed_after_listing_is_refused_by_name(tmp_path, rng):
    from pixzip.learn.datasets import open_source
    (tmp_path / "f").mkdir()
    path = tmp_path / "f" / "a.png"
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    src = open_source([tmp_path / "f"])
    Image.fromarray(rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)).save(path)
    with pytest.raises(DataError, match="8x16 pixels when read, but 16x16"):
        src.load(0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.integers(1, 9)), min_size=1, max_size=4), st.integers(0, 3),
       st.integers(0, 2**32 - 1))
def test_downscaled_copies_made_when_loaded_are_with_downscaled_copies(shapes, levels, seed):
    from pixzip.learn.datasets import Downscaled, ImageSet
    rng = np.random.default_rng(seed)
    data = ImageSet([rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes],
                    np.arange(len(shapes)), [f"i{k}" for k in range(len(shapes))])
    made, lazy = with_downscaled(data, levels), Downscaled(data, levels)
    assert len(lazy) == len(made) and lazy.names == made.names and lazy.labels.tolist() == made.labels.tolist()
    assert [tuple(s) for s in lazy.sizes] == made.sizes
    assert all(np.array_equal(lazy.load(i), made.images[i]) for i in range(len(made)))
