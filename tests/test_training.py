"""Training: it learns, it logs, and a resumed run is bit-for-bit the same run."""
import csv

import numpy as np
import torch

from pixzip.learn import api
from pixzip.learn.checkpoints import load_checkpoint, load_model, read_weights
from pixzip.learn.training import log_path_for


def make_npz(path, rng, n=24, shape=(6, 6), labels=True):
    # Smooth images: easy to learn.
    base = rng.integers(0, 200, (n, 1, 1), dtype=np.uint8)
    x = (base + np.arange(shape[1], dtype=np.uint8)[None, None, :] * 4).repeat(shape[0], axis=1)
    np.savez(path, x=x.astype(np.uint8), **({"y": rng.integers(0, 3, n)} if labels else {}))
    return path


TINY = dict(channels=4, layers=1, kernel=3, batch_size=4, progress=False, device="cpu")


def test_resume_is_bit_for_bit(tmp_path, rng):
    data = [make_npz(tmp_path / "d.npz", rng)]
    straight = api.train(data, tmp_path / "a.pt", steps=6, save_every=100, **TINY)
    api.train(data, tmp_path / "b.pt", steps=3, save_every=100, **TINY)
    resumed = api.train(data, tmp_path / "b.pt", steps=6, resume=True, **TINY)
    assert resumed.step == straight.step == 6
    for (k, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    sa, sb = straight.opt.state_dict()["state"], resumed.opt.state_dict()["state"]
    assert all(torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"]) for k in sa)


def test_training_learns_and_logs(tmp_path, rng):
    data = [make_npz(tmp_path / "d.npz", rng)]
    out = tmp_path / "m.pt"
    api.train(data, out, steps=60, val=data, val_every=30, lr=5e-2, **TINY)
    rows = list(csv.DictReader(open(log_path_for(out))))
    vals = [float(r["val_bpd"]) for r in rows if r["val_bpd"]]
    assert len(vals) == 2
    assert vals[-1] < vals[0] and vals[-1] < 7.0, vals  # learning, well below a uniform 8 bits
    bpd, n = api.evaluate(out, data, device="cpu", progress=False)
    assert n == 24 and abs(bpd - vals[-1]) < 1e-4  # the log keeps 5 decimals
    ckpt = load_checkpoint(out)
    assert ckpt["model_config"]["colors"] == 1 and ckpt["step"] == 60
    # the best validation weights are kept beside the run (here the last, as it improved)
    from pixzip.learn.training import best_path
    best = read_weights(best_path(out))
    assert best["step"] == 60 and abs(best["val_bpd"] - vals[-1]) < 1e-4
    assert abs(api.evaluate(best_path(out), data, device="cpu", progress=False)[0] - best["val_bpd"]) < 1e-9
    assert load_model(out).config.channels == 4


def test_class_conditional_training(tmp_path, rng):
    data = [make_npz(tmp_path / "d.npz", rng)]
    t = api.train(data, tmp_path / "c.pt", steps=2, n_classes=3, **TINY)
    assert t.model.config.n_classes == 3
    grid, size = api.sample(tmp_path / "c.pt", 2, label=1, device="cpu", progress=False)
    assert size == (6, 6)


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path, rng):
    import shutil
    import signal
    import subprocess
    import time

    import pytest

    if shutil.which("pixzip") is None:
        pytest.skip("pixzip is not installed")
    data = make_npz(tmp_path / "d.npz", rng)
    out = tmp_path / "m.pt"
    p = subprocess.Popen(["pixzip", "train", str(data), "--out", str(out), "--channels", "4", "--layers", "1",
                          "--kernel", "3", "--steps", "1000000", "--batch-size", "2", "--device", "cpu",
                          "--threads", "1"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not log_path_for(out).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode != 0 and "interrupted: saved step" in err
    step = load_checkpoint(out)["step"]
    assert step > 0
    resumed = api.train([data], out, steps=step + 2, resume=True, **TINY)
    assert resumed.step == step + 2


def test_crops_cut_in_loader_workers_train_the_same_run(tmp_path, rng):
    """The crops of a step are the plan's wherever they are cut: two DataLoader
    workers train bit for bit the run that this process trains alone."""
    data = [make_npz(tmp_path / "d.npz", rng)]
    here = api.train(data, tmp_path / "a.pt", steps=4, save_every=100, **TINY)
    workers = api.train(data, tmp_path / "b.pt", steps=4, save_every=100, workers=2, **TINY)
    a, b = here.model.state_dict(), workers.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_set_held_in_memory_trains_the_run_read_lazily(tmp_path, rng, monkeypatch):
    """--cache changes where the pixels come from, not the run: a folder decoded
    once (it fits) and the same folder read image by image train bit for bit alike."""
    from PIL import Image

    from pixzip.learn import datasets
    (tmp_path / "imgs").mkdir()
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (10 + i, 12, 3), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    held = []
    real = datasets.in_memory
    monkeypatch.setattr(api, "in_memory", lambda s: held.append(len(s)) or real(s))
    args = dict(TINY, steps=3, save_every=100, crop=6, downscale=1, channels=6)
    cached = api.train([tmp_path / "imgs"], tmp_path / "a.pt", **args)
    assert held == [10] and isinstance(cached.data, datasets.ImageSet)      # 5 images and 5 copies at 1/2
    lazy = api.train([tmp_path / "imgs"], tmp_path / "b.pt", cache=0, **args)
    assert held == [10] and not isinstance(lazy.data, datasets.ImageSet)
    a, b = cached.model.state_dict(), lazy.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    small = api.train([tmp_path / "imgs"], tmp_path / "c.pt", cache=100, **args)    # does not fit: lazily
    assert held == [10] and not isinstance(small.data, datasets.ImageSet)
