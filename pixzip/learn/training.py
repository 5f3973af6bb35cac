"""Training loop for the float models: Adam, per-step learning-rate decay,
gradient clipping, validation at intervals, a CSV log and resumable checkpoints.

Data-parallel through torchrun (``distributed``): each rank trains on its
slice of every step's global batch (``crops.CropPlan``), its gradients
averaged by DistributedDataParallel; rank 0 alone logs, validates and saves.
``--batch-size`` is the global batch, so the same command trains the same
run on any number of processes."""
from __future__ import annotations

import contextlib
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

from . import distributed
from .checkpoints import (
    WEIGHTS_SUFFIX,
    atomic_torch_save,
    load_checkpoint,
    save_weights,
)
from .crops import CropPlan, ImageSource, loader
from .datasets import DataError, ImageSet
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
    precision: str = "fp32"       # "bf16": the forward pass under torch.autocast in bfloat16

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


def _on_stop_signals(handler) -> dict:
    """Install ``handler`` for Ctrl-C, SIGTERM and SIGHUP (main thread only);
    returns the previous handlers, for ``_restore``.  (torchrun passes the
    signal it gets on to every rank.)"""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, handler) for s in STOP_SIGNALS}


def _restore(previous: dict) -> None:
    for s, h in previous.items():
        signal.signal(s, h)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    return torch.device(name)


CROPS = "plan"              # a checkpoint's crops come from crops.CropPlan (0.6.0's had "sampler_rng")
PROCESS_OPTIONS = ("workers", "compile", "channels_last")   # how this process runs the steps, not the run


def check_batch(batch_size: int, world: int) -> None:
    """--batch-size is the global batch: it must divide among the processes."""
    if batch_size < 1 or batch_size % world:
        raise ValueError(f"--batch-size {batch_size} does not divide among {world} processes "
                         f"(WORLD_SIZE={world}): give a multiple of {world}")


def resume_note(path, ckpt: dict, world: int) -> str | None:
    """What a user should know about resuming ``ckpt`` on ``world`` processes, or None.

    - A 0.6.0 checkpoint drew its crops from a sampler's running generator
      ("sampler_rng"); that stream is not continued: from the saved step on,
      the crops come from the plan, a function of (seed, step), as in a
      new run.  The model and optimiser go on exactly.
    - On another world size the global batch and its crops are the same,
      but the gradient is averaged over the ranks in another order, so the
      run goes on the same up to float rounding, not bit for bit (measured in
      tests/test_distributed.py)."""
    if ckpt.get("crops") != CROPS:
        return (f"{path}: a checkpoint of pixzip 0.6.0: its sampler's stream of crops ends here; from step "
                f"{ckpt['step']} on, the crops come from the crop plan of seed {ckpt['train_config']['seed']} "
                f"(the model and optimiser go on exactly)")
    saved = ckpt.get("world_size", 1)
    if saved != world:
        return (f"{path}: trained on {saved} process(es), resumed on {world}: the same global batch and crops, "
                f"the gradient averaged in another order, so the same run up to float rounding (not bit for bit)")
    return None


def log_path_for(out: Path) -> Path:
    return out.with_name(out.name + ".log.csv")


def best_path(out: Path) -> Path:
    """Where a run keeps its best-validation weights: CKPT.best.safetensors beside CKPT."""
    out = Path(out)
    return out.with_name(out.stem + ".best" + WEIGHTS_SUFFIX)


class Trainer:
    """Owns the model, optimiser, schedule and crop plan of one run (of this rank).

    ``data`` is the training source, its downscaled copies included
    (``datasets.open_source`` makes one); ``ranks`` is this process's place
    in a data-parallel run (``distributed.init``; one process by default).
    ``compile`` and ``channels_last`` change how the model runs, not what it
    computes (up to float rounding), so they are options of the process,
    not of the run."""

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig, data: ImageSource,
                 val: ImageSet | None = None, device: str = "auto", *, ranks: distributed.Ranks | None = None,
                 workers: int = 0, compile: bool = False, channels_last: bool = False):
        self.ranks = ranks or distributed.Ranks(device=pick_device(device))
        self.device = self.ranks.device
        self.mcfg = model_config
        self.tcfg = train_config
        if data.colors != model_config.colors:
            raise ValueError(f"data has {data.colors} colours but the model expects {model_config.colors}")
        if train_config.precision not in PRECISIONS:
            raise ValueError(f"--precision {train_config.precision}: choose one of {', '.join(PRECISIONS)}")
        check_batch(train_config.batch_size, self.ranks.world)
        torch.manual_seed(train_config.seed)
        self.model = build_model(model_config).to(self.device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=train_config.lr)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: train_config.lr_decay ** s)
        self.data = data
        self.plan = CropPlan(data.sizes, train_config.crop, train_config.seed, train_config.flip)
        self.workers = workers
        # What runs the training steps: compiled (nanoGPT compiles, then wraps) and, on several ranks, DDP.
        runner = torch.compile(self.model) if compile else self.model
        if self.ranks.grouped:
            from torch.nn.parallel import DistributedDataParallel
            # The gated model's last h_out (and an unconditioned class embedding) takes no part in the loss.
            runner = DistributedDataParallel(runner, device_ids=[self.device.index] if self.device.type == "cuda"
                                             else None, find_unused_parameters=True)
        self.runner: torch.nn.Module = runner
        self.val = val
        self.step = 0
        self.elapsed = 0.0
        self.best_val = math.inf
        self._batches: tuple | None = None     # (the loader's iterator, the step its next batch is for)
        self._ready: tuple | None = None       # the batch of step ``self.step``, read by ``_fetch``

    # -- checkpoints ------------------------------------------------------
    def state(self) -> dict:
        """The run's state.  Every rank seeds torch alike and draws alike, yet
        each rank's generators are kept (``rng_by_rank``), as cheap insurance."""
        rng = self.ranks.gather({"torch": torch.get_rng_state(),
                                 "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda"
                                 else None})
        return {
            "model_config": self.mcfg.to_dict(),
            "train_config": asdict(self.tcfg),
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "step": self.step,
            "image_size": list(self.plan.crop),
            "elapsed_s": self.elapsed,
            "best_val_bpd": self.best_val,
            "crops": CROPS,
            "world_size": self.ranks.world,
            "rng_by_rank": rng,
        }

    def save(self, path: Path) -> None:
        """Every rank calls this (it gathers their generators); rank 0 writes."""
        state = self.state()
        if self.ranks.is_main:
            atomic_torch_save(state, path)

    @classmethod
    def resume(cls, path: Path, data: ImageSource, val: ImageSet | None = None, device: str = "auto",
               ranks: distributed.Ranks | None = None, ckpt: dict | None = None, **options) -> "Trainer":
        """The run saved in ``path``, ready to go on.  ``options``: changes to
        its TrainConfig, and the process's own options (workers, compile,
        channels_last).  Rank 0 says in one line on stderr where the resume
        is not bit for bit (see ``resume_note``).  ``ckpt``: its contents, if
        the caller has read them already."""
        if ckpt is None:
            ckpt = load_checkpoint(path, resume=True)
        process = {k: options.pop(k) for k in PROCESS_OPTIONS if k in options}
        tcfg = TrainConfig.from_dict({**ckpt["train_config"], **options})
        trainer = cls(ModelConfig.from_dict(ckpt["model_config"]), tcfg, data, val, device, ranks=ranks,
                      **process)
        trainer.model.load_state_dict(ckpt["model"])
        trainer.opt.load_state_dict(ckpt["optimizer"])
        trainer.sched.load_state_dict(ckpt["scheduler"])
        trainer.step = ckpt["step"]
        trainer.elapsed = ckpt.get("elapsed_s", 0.0)
        trainer.best_val = ckpt.get("best_val_bpd", math.inf)
        r = trainer.ranks
        saved = ckpt.get("rng_by_rank") or [{"torch": ckpt["torch_rng"], "cuda": None}]    # 0.6.0: one
        mine = saved[r.rank % len(saved)]
        torch.set_rng_state(mine["torch"])
        if mine.get("cuda") is not None and trainer.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], trainer.device)
        message = resume_note(path, ckpt, r.world)
        if message and r.is_main:
            print(f"pixzip: note: {message}", file=sys.stderr)
        return trainer

    # -- one optimisation step -------------------------------------------
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's slice of step ``self.step``'s crops, from the loader
        (started again at the current step whenever it is out of step)."""
        if self._batches is None or self._batches[1] != self.step:
            it = iter(loader(self.data, self.plan, self.tcfg.batch_size, self.step, max(self.tcfg.steps, self.step + 1),
                             self.ranks.rank, self.ranks.world, self.workers))
            self._batches = (it, self.step)
        it, step = self._batches
        batch = next(it)
        self._batches = (it, step + 1)
        return batch

    def _fetch(self) -> str | None:
        """Read this rank's batch of step ``self.step``; None, or the one line
        saying which image could not be read.  Every rank must learn of a
        failure before the step whose gradients they average, so the loop
        reads a step's batch before the previous step's agreement (``agree``
        carries the flag) and stops every rank there (``_stop_if``)."""
        try:
            self._ready = self.next_batch()
            return None
        except DataError as e:
            self._ready = None
            return str(e)

    def _stop_if(self, failure: str | None, raised: bool | None = None) -> None:
        """Every rank raises the first rank's failure, if any rank has one (``ranks.first_failure``)."""
        failure = self.ranks.first_failure(failure, raised)
        if failure is not None:
            raise DataError(failure)

    def _train_step(self) -> torch.Tensor:
        """One step on this rank's slice, the batch ``_fetch`` read; returns
        its loss in bits (a tensor, not yet read)."""
        self.runner.train()
        assert self._ready is not None, "_fetch reads a step's batch first"
        x, y = self._ready
        self._ready = None
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        labels = y.to(self.device) if self.mcfg.n_classes and bool((y >= 0).all()) else None
        dtype = PRECISIONS[self.tcfg.precision]
        with torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = self.runner(x, labels)
        loss = nll_nats(logits.float(), x)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.tcfg.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tcfg.clip)
        self.opt.step()
        self.sched.step()
        self.step += 1
        return loss.detach() / LN2

    def train_step(self) -> float:
        """One step, its batch read first; the global batch's mean loss in bits/dim."""
        self._stop_if(self._fetch())
        return self.ranks.agree(self._train_step())[0]

    def validate(self) -> float:
        return evaluate_bpd(self.model, self.val, device=self.device)

    def save_best(self, path: Path, bpd: float) -> None:
        """The weights alone at a new best validation bits/dim (evaluation noise
        between nearby steps is a few hundredths, so the last state may not be
        the best one); eval, sample and export read it like a checkpoint."""
        save_weights(self.model, path, step=self.step, val_bpd=bpd)

    # -- the run -----------------------------------------------------------
    def fit(self, out: Path, progress: bool = True, max_seconds: float | None = None) -> None:
        """Train until ``steps``, checkpointing to ``out`` and logging to ``out``.log.csv
        (rank 0 alone writes).  ``max_seconds`` stops early (after saving) so a
        run can be resumed later; so do Ctrl-C, SIGTERM and SIGHUP, on every
        rank at the same step."""
        out = Path(out)
        main = self.ranks.is_main
        log = log_path_for(out)
        new_log = not log.exists() or self.step == 0
        fields_ = ["step", "train_bpd", "val_bpd", "lr", "images_per_s", "elapsed_s"]
        t = self.tcfg
        with (open(log, "w" if new_log else "a", newline="") if main else contextlib.nullcontext()) as fh:
            writer = csv.DictWriter(fh, fieldnames=fields_) if main else None
            if writer is not None and new_log:
                writer.writeheader()
            bar = tqdm(total=t.steps, initial=self.step, disable=not (progress and main), unit="step",
                       dynamic_ncols=True, smoothing=0.05)
            window: list[float] = []
            t_start = time.monotonic()
            t_window = time.monotonic()
            interrupted: list[int] = []
            signalled = False
            previous = _on_stop_signals(lambda signum, _: interrupted.append(signum))
            try:
                if self.step < t.steps:
                    self._stop_if(self._fetch())        # the first batch, agreed on its own
                while self.step < t.steps:
                    loss = self._train_step()
                    failure = self._fetch() if self.step < t.steps else None    # the next step's batch
                    now = time.monotonic()
                    late = max_seconds is not None and now - t_start >= max_seconds
                    bpd, (late, signalled, failed) = self.ranks.agree(loss, late, bool(interrupted),
                                                                      failure is not None)
                    self._stop_if(failure, failed)
                    window.append(bpd)
                    ips = t.batch_size * len(window) / max(now - t_window, 1e-9)
                    bar.update(1)
                    bar.set_postfix(bpd=f"{np.mean(window[-50:]):.3f}", img_s=f"{ips:.1f}")
                    val = None
                    if main and self.val is not None and (self.step % t.val_every == 0 or self.step == t.steps):
                        val = self.validate()
                        bar.write(f"step {self.step}: val bits/dim {val:.4f}")
                        if val < self.best_val:
                            self.best_val = val
                            self.save_best(best_path(out), val)
                    if self.step % t.log_every == 0 or val is not None or self.step == t.steps:
                        self.elapsed += now - t_window
                        if writer is not None:
                            writer.writerow({"step": self.step, "train_bpd": f"{np.mean(window):.5f}",
                                             "val_bpd": "" if val is None else f"{val:.5f}",
                                             "lr": f"{self.sched.get_last_lr()[0]:.3e}",
                                             "images_per_s": f"{ips:.2f}", "elapsed_s": f"{self.elapsed:.1f}"})
                            fh.flush()
                        window = []
                        t_window = time.monotonic()
                    if self.step % t.save_every == 0 and self.step < t.steps and not (late or signalled):
                        self.save(out)
                    if signalled:
                        break
                    if late:
                        bar.write(f"stopping after {max_seconds:.0f} s at step {self.step}; resume with --resume")
                        break
            finally:
                _restore(previous)
                self._batches = self._ready = None     # ends the loader's workers
                bar.close()
        self.save(out)
        if signalled:
            if main:
                print(f"interrupted: saved step {self.step} to {out}; resume with --resume", file=sys.stderr)
            raise KeyboardInterrupt(interrupted[0] if interrupted else signal.SIGINT)   # the signal, for the exit status
