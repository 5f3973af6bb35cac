"""The library API behind the command line: train, evaluate and sample."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from .atomic import atomic_write
from .checkpoints import load_checkpoint, load_model
from .datasets import load_images
from .likelihood import evaluate_bpd
from .networks import ModelConfig
from .sampling import image_grid, sample as draw_samples
from .training import TrainConfig, Trainer, pick_device


def train(data, out: Path, *, val=(), resume=False, device="auto", threads=None, max_minutes=None,
          gray=False, arch="gated", channels=60, layers=8, kernel=5, skip_channels=0, head_channels=0,
          n_classes=0, steps=10000, batch_size=16, crop=None, lr=1e-3, lr_decay=0.999995, clip=1.0, flip=False,
          downscale=0, val_every=1000, save_every=500, seed=0, progress=True) -> Trainer:
    """Train (or resume) a float model and leave its checkpoint at ``out``."""
    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    colors = 1 if gray else None
    if resume:
        if not out.exists():
            raise FileNotFoundError(f"{out}: no checkpoint to resume")
        colors = load_checkpoint(out)["model_config"]["colors"]
    images = load_images(data, colors=colors)
    val_set = load_images(val, colors=images.colors) if val else None
    if resume:
        trainer = Trainer.resume(out, images, val_set, device, steps=steps)
    else:
        mcfg = ModelConfig(arch=arch, colors=images.colors, channels=channels, layers=layers,
                           kernel=kernel, skip_channels=skip_channels, head_channels=head_channels,
                           n_classes=n_classes)
        tcfg = TrainConfig(steps=steps, batch_size=batch_size, crop=crop, lr=lr, lr_decay=lr_decay,
                           clip=clip, flip=flip, downscale=downscale, seed=seed, val_every=val_every,
                           save_every=save_every)
        trainer = Trainer(mcfg, tcfg, images, val_set, device)
    trainer.fit(out, progress=progress, max_seconds=max_minutes * 60 if max_minutes else None)
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
        from . import registry
        from .sampling import sample_integer
        net = registry.load(checkpoint)
        h, w = size or (32, 32)
        if label is not None and not (net.n_classes and 0 <= label < net.n_classes):
            raise ValueError(f"{checkpoint}: --label needs a class-conditional model with that class")
        with tqdm(total=n * h * w, disable=not progress, unit="px", leave=False) as bar:
            images = sample_integer(net, n, h, w, label=label, seed=seed, progress=bar.update)
        return image_grid(images), (h, w)
    dev = pick_device(device)
    ckpt = load_checkpoint(checkpoint)
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
