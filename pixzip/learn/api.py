"""The library API behind the command line: train, evaluate and sample."""
from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from ..atomic import atomic_write
from .checkpoints import load_checkpoint, load_model, read
from . import distributed
from .datasets import decoded_bytes, in_memory, load_images, open_source
from .likelihood import evaluate_bpd
from .networks import ModelConfig
from .sampling import image_grid
from .sampling import sample as draw_samples
from .training import TrainConfig, Trainer, check_batch, pick_device

# Decoded training images a process holds in memory at most (--cache): a set that fits is decoded once.
DEFAULT_CACHE = 1 << 30
# What a resumed run may change.
RESUMABLE = ("steps", "batch_size", "clip", "val_every", "save_every", "log_every", "precision")


def _flag(key: str) -> str:
    """The command-line option of a training setting."""
    return "--" + {"n_classes": "classes"}.get(key, key).replace("_", "-")


def _resume_changes(out: Path, ckpt: dict, options: dict) -> dict:
    """The training settings that ``options`` change in a resumed run.  An
    option equal to the checkpoint's is no change; one that differs must be
    in RESUMABLE (the model, the data's shape and the learning-rate schedule
    are the run's own)."""
    saved = {**ckpt["model_config"], **ckpt["train_config"]}
    changes = {}
    for key, value in options.items():
        if key in saved and value == saved[key]:
            continue
        if key not in RESUMABLE:
            raise ValueError(f"{out}: {_flag(key)} is {saved.get(key)!r} in this run and cannot change on "
                             f"--resume (these can: {', '.join(map(_flag, RESUMABLE))})")
        changes[key] = value
    return changes


def train(data, out: Path, *, val=(), resume=False, device="auto", threads=None, max_minutes=None,
          gray=False, progress=True, workers=0, compile=False, channels_last=False, cache=DEFAULT_CACHE,
          **options) -> Trainer:
    """Train (or resume) a float model and leave its checkpoint at ``out``.

    ``options`` are fields of ``ModelConfig`` and ``TrainConfig`` (their
    defaults apply to a new run).  With ``resume``, the run continues from
    ``out`` with its own settings; options may change only those in
    RESUMABLE, for example a smaller batch on a machine with less memory.

    Under torchrun (RANK, LOCAL_RANK, WORLD_SIZE set) every process calls
    this alike: each trains on its slice of the global batch
    (``batch_size``, which must divide by WORLD_SIZE) and rank 0 alone
    logs, validates and saves (``distributed``).  ``workers``: DataLoader
    processes that cut the crops (0: this one); ``compile``: torch.compile the
    model; ``channels_last``: that memory format; ``cache``: the bytes of
    decoded images each process may hold, so that a set that fits is decoded
    once (as a list of arrays) and a larger one is read lazily, each image
    when a crop needs it.  These change how a step runs, not the run (the
    same crops either way), and are not saved."""
    model_keys = {f.name for f in fields(ModelConfig)}
    unknown = set(options) - model_keys - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise TypeError(f"unknown training option(s): {', '.join(sorted(unknown))}")
    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    colors = 1 if gray else None
    ckpt = None
    saved: dict = {}
    if resume:
        if not out.exists():
            raise FileNotFoundError(f"{out}: no checkpoint to resume")
        ckpt = load_checkpoint(out, resume=True)
        colors = ckpt["model_config"]["colors"]
        if gray and colors != 1:
            raise ValueError(f"{out}: this run trains a colour model; --gray cannot change on --resume")
        saved = ckpt["train_config"]
    run = {**asdict(TrainConfig()), **saved, **options}
    check_batch(run["batch_size"], distributed.env_world()[2])     # before any data is read
    source = open_source(data, colors=colors, downscale=run["downscale"])
    if cache and decoded_bytes(source) <= cache:     # fits: decoded once, not once per crop
        source = in_memory(source)
    main = distributed.is_main()
    val_set = load_images(val, colors=source.colors) if val and main else None   # rank 0 alone validates
    process = dict(workers=workers, compile=compile, channels_last=channels_last)
    with distributed.session(device) as ranks:
        if resume:
            trainer = Trainer.resume(out, source, val_set, device, ranks=ranks, ckpt=ckpt,
                                     **_resume_changes(out, ckpt, options), **process)
        else:
            mcfg = ModelConfig(colors=source.colors, **{k: v for k, v in options.items() if k in model_keys})
            tcfg = TrainConfig(**{k: v for k, v in options.items() if k not in model_keys})
            trainer = Trainer(mcfg, tcfg, source, val_set, device, ranks=ranks, **process)
        try:
            trainer.fit(out, progress=progress, max_seconds=max_minutes * 60 if max_minutes else None)
        except RuntimeError as e:
            if not (ranks.grouped and distributed.is_peer_failure(e)):
                raise
            raise distributed.PeerLost(f"{out}: process {ranks.rank} of {ranks.world}: another process of this "
                                       f"run stopped or left ({str(e).strip().splitlines()[0][:200]})") from None
    return trainer


def evaluate(checkpoint, data, device="auto", batch_size=64, progress=True) -> tuple[float, int]:
    """(bits/dim, number of images) of a checkpoint's model on ``data``."""
    dev = pick_device(device)
    model = load_model(checkpoint, dev)
    images = load_images(data, colors=model.config.colors)
    with tqdm(total=len(images), disable=not progress, unit="img", leave=False) as bar:
        bpd = evaluate_bpd(model, images, batch_size=batch_size, device=dev, progress=bar.update)
    return bpd, len(images)


def sample(checkpoint, n, size=None, label=None, seed=0, device="auto", progress=True):
    """(grid image, (H, W)) of ``n`` samples drawn from a checkpoint's float
    model, or from an integer model (.pxm) through the decoder's loop."""
    if str(checkpoint).endswith(".pxm"):
        from ..codec.network.registry import load_model as load_integer_model
        from .sampling import sample_integer
        net = load_integer_model(checkpoint)
        h, w = size or (32, 32)
        if label is not None and not (net.n_classes and 0 <= label < net.n_classes):
            raise ValueError(f"{checkpoint}: --label needs a class-conditional model with that class")
        with tqdm(total=n * h * w, disable=not progress, unit="px", leave=False) as bar:
            images = sample_integer(net, n, h, w, label=label, seed=seed, progress=bar.update)
        return image_grid(images), (h, w)
    dev = pick_device(device)
    ckpt = read(checkpoint)
    model = load_model(ckpt, dev)
    if size is None:
        size = tuple(ckpt.get("image_size", (32, 32)))
    h, w = size
    if label is not None and not model.config.n_classes:
        raise ValueError(f"{checkpoint}: model is not class-conditional; drop --label")
    if label is not None and not 0 <= label < model.config.n_classes:
        raise ValueError(f"--label must be in 0..{model.config.n_classes - 1}")
    with tqdm(total=h * w, disable=not progress, unit="px", leave=False) as bar:
        images = draw_samples(model, n, h, w, labels=label, seed=seed, device=dev, progress=bar.update)
    return image_grid(images), (h, w)


def save_image_atomic(image: Image.Image, path: Path) -> None:
    """Save an image atomically, in the format its suffix names (PNG by default)."""
    fmt = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")
    atomic_write(path, lambda tmp: image.save(tmp, format=fmt))
