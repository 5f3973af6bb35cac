"""Tar shards of the WebDataset layout: written by pixzip shard, read back by random access."""
import io
import json
import pickle
import tarfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from pixzip.cli.main import main
from pixzip.learn.datasets import DataError, load_images, open_source
from pixzip.learn.shards import index_shards, write_shards

from .test_datasets import write_kinds


def png(a) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def imgs(tmp_path, rng):
    write_kinds(tmp_path / "imgs", rng)
    return tmp_path / "imgs"


def test_shards_round_trip_every_image_exactly(tmp_path, imgs):
    with pytest.warns(UserWarning, match="4 image"):
        r = write_shards([imgs], tmp_path / "out" / "train", max_count=3)
    assert r["images"] == 8 and [p.rsplit("/", 1)[-1] for p in r["shards"]] == \
        ["train-000000.tar", "train-000001.tar", "train-000002.tar"]
    for colors in (None, 1, 3):
        with pytest.warns(UserWarning):
            files = open_source([imgs], colors=colors, downscale=1)
        shards = open_source([tmp_path / "out"], colors=colors, downscale=1)   # converted once, when written
        assert shards.colors == files.colors and np.array_equal(shards.sizes, files.sizes)
        for i in range(len(files)):
            assert np.array_equal(shards.load(i), files.load(i))
    braces = open_source([str(tmp_path / "out" / "train-{000000..000002}.tar")])
    assert list(braces.names)[3] == f"{tmp_path}/out/train-000001.tar[000003.png]"


def test_webdataset_reads_the_shards_back(tmp_path, imgs):
    import webdataset as wds
    with pytest.warns(UserWarning):
        write_shards([imgs], tmp_path / "s", max_count=4)
        files = load_images([imgs])
    samples = list(wds.WebDataset(str(tmp_path / "s-{000000..000001}.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == [f"{i:06d}" for i in range(8)]
    for s, name in zip(samples, files.names):
        meta = json.loads(s["json"])
        pixels = np.asarray(Image.open(io.BytesIO(s["png"])))
        assert meta["source"] == name and (meta["h"], meta["w"]) == pixels.shape[:2]
        assert meta["colours"] == (1 if pixels.ndim == 2 else 3)


def test_labels_of_npz_arrays_travel_as_cls_members(tmp_path, rng):
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, (5, 4, 6), dtype=np.uint8), y=np.arange(5) * 2)
    write_shards([tmp_path / "d.npz"], tmp_path / "s")
    src = open_source([tmp_path / "s-000000.tar"])
    assert src.labels.tolist() == [0, 2, 4, 6, 8] and src.colors == 1


def test_shards_another_tool_wrote_without_json_are_read_from_the_images_headers(tmp_path, rng):
    import webdataset as wds
    rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, (7, 9), dtype=np.uint8)
    rgba = rng.integers(0, 256, (6, 8, 4), dtype=np.uint8)
    with wds.ShardWriter(str(tmp_path / "other-%06d.tar"), maxcount=2, verbose=0) as sink:
        for key, a in (("x/rgb", rgb), ("x/gray", gray), ("x/rgba", rgba)):
            sink.write({"__key__": key, "png": png(a), "txt": b"a caption"})
    with pytest.warns(UserWarning, match=r"other-000001.tar\[x/rgba.png\] \(RGBA\)"):
        src = open_source([tmp_path])
    assert [tuple(s) for s in src.sizes] == [(10, 12), (7, 9), (6, 8)] and src.colors == 3
    assert np.array_equal(src.load(0), rgb) and np.array_equal(src.load(1)[..., 1], gray)
    assert np.array_equal(src.load(2), np.asarray(Image.fromarray(rgba).convert("RGB")))


def write_tar(path, members):
    with tarfile.open(path, "w") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def test_a_truncated_or_damaged_shard_is_one_line_naming_it(tmp_path, rng):
    members = [(f"{i:06d}.png", png(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))) for i in range(3)]
    write_tar(tmp_path / "s.tar", members)
    whole = (tmp_path / "s.tar").read_bytes()
    cases = {"mid-member": whole[:1000], "mid-header": whole[:512 + len(members[0][1]) // 512 * 512 + 812],
             "at a member": whole[:512 + -(-len(members[0][1]) // 512) * 512]}
    damaged = bytearray(whole)
    damaged[512 + -(-len(members[0][1]) // 512) * 512 + 10] ^= 0xFF        # the second member's header
    cases["bad header"] = bytes(damaged)
    cases["not a tar"] = b"x" * 700
    for what, data in cases.items():
        bad = tmp_path / f"bad-{what.replace(' ', '-')}.tar"
        bad.write_bytes(data)
        with pytest.raises(DataError) as e:
            open_source([bad])
        assert str(e.value).startswith(f"{bad}") and "\n" not in str(e.value), what


def test_a_member_that_is_not_an_image_is_one_line_naming_shard_and_member(tmp_path, rng):
    from pixzip.learn import crops
    ok = png(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    meta = json.dumps({"h": 8, "w": 8, "colours": 3}).encode()
    write_tar(tmp_path / "a.tar", [("000000.png", ok), ("000001.png", b"not a png at all")])
    with pytest.raises(DataError, match=r"a.tar\[000001.png\]: not a readable image"):
        open_source([tmp_path / "a.tar"])                 # no .json: its header is read when listed
    write_tar(tmp_path / "b.tar", [("000000.json", meta), ("000000.png", b"garbage"), ("000001.json", meta),
                                   ("000001.png", ok)])
    src = open_source([tmp_path / "b.tar"])                # the .json says its size: found when loaded
    with pytest.raises(DataError) as e:
        list(crops.loader(src, crops.CropPlan([(8, 8), (1, 1)], 8, seed=0), 2, 0, 1, workers=1))
    assert str(e.value).startswith(f"{tmp_path}/b.tar[000000.png]: ") and "\n" not in str(e.value)
    write_tar(tmp_path / "c.tar", [("000000.json", meta), ("000000.txt", b"hello")])
    with pytest.raises(DataError, match=r"c.tar\[000000\]: no image member \(it has json, txt\)"):
        open_source([tmp_path / "c.tar"])


def test_the_shard_source_pickles_small(tmp_path, rng):
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    write_shards([tmp_path], tmp_path / "s" / "t", max_count=5)
    src, _ = index_shards(sorted((tmp_path / "s").glob("*.tar")))
    assert len(src) == 20 and len(pickle.dumps(src)) < 20 * 64 * 64 * 3 / 20


def test_pixzip_shard_writes_shards_and_refuses_to_overwrite_them(tmp_path, rng):
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    out = tmp_path / "s" / "train"
    r = CliRunner().invoke(main, ["shard", str(tmp_path), "--out", str(out), "--max-count", "2"])
    assert r.exit_code == 0, r.output
    assert "3 images -> 2 shard(s)" in r.output
    before = (tmp_path / "s" / "train-000000.tar").read_bytes()
    Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).save(tmp_path / "3.png")
    r = CliRunner().invoke(main, ["shard", str(tmp_path), "--out", str(out)])
    assert r.exit_code == 1 and r.output.strip() == f"pixzip: {out}-000000.tar: already exists (give -f to overwrite)"
    assert (tmp_path / "s" / "train-000000.tar").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["train-000000.tar", "train-000001.tar"]
    r = CliRunner().invoke(main, ["shard", str(tmp_path), "--out", str(out), "-f"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["train-000000.tar"]     # the old set's rest gone
    assert len(open_source([tmp_path / "s"])) == 4
    r = CliRunner().invoke(main, ["shard", str(tmp_path / "nope"), "--out", str(tmp_path / "t")])
    assert r.exit_code == 1 and r.output.strip() == f"pixzip: {tmp_path / 'nope'}: no such file or directory"


def test_pixzip_trains_on_shards_given_as_a_brace_pattern(tmp_path, rng):
    from .test_cli import TINY
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    write_shards([tmp_path], tmp_path / "s" / "t", max_count=2)
    r = CliRunner().invoke(main, ["train", str(tmp_path / "s" / "t-{000000..000001}.tar"), "--out",
                                  str(tmp_path / "m.pt"), "--steps", "2", "--crop", "8", *TINY])
    assert r.exit_code == 0, r.output
