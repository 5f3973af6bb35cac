"""Training loop for the float models: Adam, per-step learning-rate decay,
gradient clipping, validation at intervals, a CSV log and resumable checkpoints."""
from __future__ import annotations

import csv
import math
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .checkpoints import (
    WEIGHTS_SUFFIX,
    atomic_torch_save,
    load_checkpoint,
    save_weights,
)
from .datasets import CropSampler, ImageSet, with_downscaled
from .likelihood import LN2, evaluate_bpd, nll_nats
from .networks import ModelConfig, build_model


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 10000
    batch_size: int = 16
    crop: int | None = None       # None: whole images (they must share one size)
    lr: float = 1e-3
    lr_decay: float = 0.999995    # lr * lr_decay ** step, as in the seed
    clip: float = 1.0             # gradient-norm clipping
    flip: bool = False            # random horizontal flips
    downscale: int = 0            # also train on copies downscaled by 2, 4, ... 2**downscale
    seed: int = 0
    val_every: int = 1000
    save_every: int = 500
    log_every: int = 50

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _on_sigint(handler):
    """Install a SIGINT handler (main thread only); returns the previous one."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, handler) if handler is not None else None


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    return torch.device(name)


def log_path_for(out: Path) -> Path:
    return out.with_name(out.name + ".log.csv")


def best_path(out: Path) -> Path:
    """Where a run keeps its best-validation weights: CKPT.best.safetensors beside CKPT."""
    out = Path(out)
    return out.with_name(out.stem + ".best" + WEIGHTS_SUFFIX)


class Trainer:
    """Owns the model, optimiser, schedule and data sampler of one run."""

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig, data: ImageSet,
                 val: ImageSet | None = None, device: str = "auto"):
        self.device = pick_device(device)
        self.mcfg = model_config
        self.tcfg = train_config
        if data.colors != model_config.colors:
            raise ValueError(f"data has {data.colors} colours but the model expects {model_config.colors}")
        torch.manual_seed(train_config.seed)
        self.model = build_model(model_config).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=train_config.lr)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: train_config.lr_decay ** s)
        self.sampler = CropSampler(with_downscaled(data, train_config.downscale), train_config.crop,
                                   train_config.seed, train_config.flip)
        self.val = val
        self.step = 0
        self.elapsed = 0.0
        self.best_val = math.inf

    # -- checkpoints ------------------------------------------------------
    def state(self) -> dict:
        return {
            "model_config": self.mcfg.to_dict(),
            "train_config": asdict(self.tcfg),
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "step": self.step,
            "image_size": list(self.sampler.crop),
            "elapsed_s": self.elapsed,
            "best_val_bpd": self.best_val,
            "sampler_rng": self.sampler.state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def save(self, path: Path) -> None:
        atomic_torch_save(self.state(), path)

    @classmethod
    def resume(cls, path: Path, data: ImageSet, val: ImageSet | None = None, device: str = "auto",
               **overrides) -> "Trainer":
        ckpt = load_checkpoint(path, resume=True)
        tcfg = TrainConfig.from_dict({**ckpt["train_config"], **overrides})
        trainer = cls(ModelConfig.from_dict(ckpt["model_config"]), tcfg, data, val, device)
        trainer.model.load_state_dict(ckpt["model"])
        trainer.opt.load_state_dict(ckpt["optimizer"])
        trainer.sched.load_state_dict(ckpt["scheduler"])
        trainer.step = ckpt["step"]
        trainer.elapsed = ckpt.get("elapsed_s", 0.0)
        trainer.best_val = ckpt.get("best_val_bpd", math.inf)
        trainer.sampler.set_state(ckpt["sampler_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        if ckpt.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        return trainer

    # -- one optimisation step -------------------------------------------
    def train_step(self) -> float:
        self.model.train()
        x, y = self.sampler.batch(self.tcfg.batch_size)
        x = torch.from_numpy(x).to(self.device)
        labels = torch.from_numpy(y).to(self.device) if (y is not None and self.mcfg.n_classes) else None
        loss = nll_nats(self.model(x, labels), x)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.tcfg.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tcfg.clip)
        self.opt.step()
        self.sched.step()
        self.step += 1
        return loss.item() / LN2

    def validate(self) -> float:
        return evaluate_bpd(self.model, self.val, device=self.device)

    def save_best(self, path: Path, bpd: float) -> None:
        """The weights alone at a new best validation bits/dim (evaluation noise
        between nearby steps is a few hundredths, so the last state may not be
        the best one); eval, sample and export read it like a checkpoint."""
        save_weights(self.model, path, step=self.step, val_bpd=bpd)

    # -- the run -----------------------------------------------------------
    def fit(self, out: Path, progress: bool = True, max_seconds: float | None = None) -> None:
        """Train until ``steps``, checkpointing to ``out`` and logging to ``out``.log.csv.
        ``max_seconds`` stops early (after saving) so a run can be resumed later."""
        out = Path(out)
        log = log_path_for(out)
        new_log = not log.exists() or self.step == 0
        fields_ = ["step", "train_bpd", "val_bpd", "lr", "images_per_s", "elapsed_s"]
        t = self.tcfg
        with open(log, "w" if new_log else "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields_)
            if new_log:
                writer.writeheader()
            bar = tqdm(total=t.steps, initial=self.step, disable=not progress, unit="step",
                       dynamic_ncols=True, smoothing=0.05)
            window: list[float] = []
            t_start = time.monotonic()
            t_window = time.monotonic()
            interrupted = []
            previous = _on_sigint(lambda *_: interrupted.append(True))
            while self.step < t.steps and not interrupted:
                bpd = self.train_step()
                window.append(bpd)
                now = time.monotonic()
                ips = t.batch_size * len(window) / max(now - t_window, 1e-9)
                bar.update(1)
                bar.set_postfix(bpd=f"{np.mean(window[-50:]):.3f}", img_s=f"{ips:.1f}")
                val = None
                if self.val is not None and (self.step % t.val_every == 0 or self.step == t.steps):
                    val = self.validate()
                    bar.write(f"step {self.step}: val bits/dim {val:.4f}")
                    if val < self.best_val:
                        self.best_val = val
                        self.save_best(best_path(out), val)
                if self.step % t.log_every == 0 or val is not None or self.step == t.steps:
                    self.elapsed += now - t_window
                    writer.writerow({"step": self.step, "train_bpd": f"{np.mean(window):.5f}",
                                     "val_bpd": "" if val is None else f"{val:.5f}",
                                     "lr": f"{self.sched.get_last_lr()[0]:.3e}",
                                     "images_per_s": f"{ips:.2f}", "elapsed_s": f"{self.elapsed:.1f}"})
                    fh.flush()
                    window = []
                    t_window = time.monotonic()
                stop = max_seconds is not None and now - t_start >= max_seconds
                if self.step % t.save_every == 0 and self.step < t.steps and not stop:
                    self.save(out)
                if stop:
                    bar.write(f"stopping after {max_seconds:.0f} s at step {self.step}; resume with --resume")
                    break
            _on_sigint(previous)
            bar.close()
        self.save(out)
        if interrupted:
            print(f"interrupted: saved step {self.step} to {out}; resume with --resume", file=sys.stderr)
            raise KeyboardInterrupt
