"""Training loop: seeded, resumable, with progress bars and a JSONL log."""
from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import data, tiles
from .device import Precision, resolve_device
from .loss import mixed_distillation_loss
from .student import Student, plan_paths, taps_of
from .synthetic_defects import KINDS, TRAINING_KINDS, corrupt
from .teachers import Standardized, build_teacher

log = logging.getLogger("mixdistill.train")


@dataclass
class TrainConfig:
    data: str
    category: str | None
    out: str
    teacher: str = "nsfwjs:mobilenet_v2"
    taps: list[str] | None = None
    paths: list[str] = field(default_factory=lambda: ["direct", "skip", "symmetric"])
    path_weights: dict[str, float] = field(default_factory=dict)  # by kind; default 1
    standardize_teacher: bool = False  # teacher taps (f - mean) / std per channel, statistics of the training images
    student: str = "forward"  # forward (STPM) | reverse (RD4AD: frozen teacher encoder, bottleneck, decoder)
    widths: list[int] | None = None
    blocks: int = 2
    width: int = 256
    height: int = 256
    fit: str = "stretch"
    # fit "tile": {"scale", "overlap", "blend"} (the bundle's input.tile); the student trains on crops of the input's
    # size at that scale, drawn anew every epoch, and validates on the grid's tiles of the held-out images.
    tile: dict | None = None
    normalize_intensity: dict | None = None  # {"mean", "std"} in 0..255: per-image exposure normalisation
    epochs: int = 40
    # At least this many optimiser steps: a category with few training images gets more epochs (metal_plate's 46
    # are 2 steps an epoch at batch 16), so that a recipe's budget does not shrink with the data.
    min_steps: int = 0
    batch: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-5
    augment: bool = True
    # Denoising student (DeSTSeg): this fraction of training images reaches the student with a synthetic defect
    # painted on, while the teacher sees the clean image; the student learns to answer normal features to
    # what normal images never show, instead of copying the teacher on anything.
    denoise: float = 0.0
    denoise_kinds: list[str] = field(default_factory=lambda: list(KINDS))
    # Training loss per path over only this fraction of locations, the worst-fitted ones (1: all; validation
    # loss always uses all, so runs stay comparable).
    hard_fraction: float = 1.0
    val_fraction: float = 0.15
    seed: int = 0
    # The held-out split's own seed (None: seed), so that runs of one recipe trained with other seeds hold out the
    # same normal images and can be calibrated together as one ensemble.
    split_seed: int | None = None
    threads: int = 0  # 0: all cores

    @property
    def val_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Run:
    """Everything a run needs, rebuilt identically from its config (for training, resuming and export)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.teacher = build_teacher(cfg.teacher, cfg.taps, cfg.height, cfg.width)
        self.taps = taps_of(self.teacher.shapes, cfg.height)
        if cfg.standardize_teacher:
            self.teacher.module = Standardized(self.teacher.module, [t.channels for t in self.taps])
        self.paths = plan_paths(len(self.taps), cfg.paths)
        widths = cfg.widths or [max(64, 2 * t.channels) for t in self.taps]
        self.student = Student(self.taps, self.paths, widths, cfg.blocks, cfg.student, self.teacher.module)
        self.loss_weights = [cfg.path_weights.get(p.kind, 1.0) for p in self.paths]

    def load(self, checkpoint: dict) -> None:
        """Student weights and, for a standardised teacher, its statistics, from a checkpoint written by train."""
        if self.cfg.standardize_teacher:
            self.teacher.module.set_stats(checkpoint["teacher_stats"])
        self.load_student(checkpoint["student"])

    def extra_state(self) -> dict:
        return {"teacher_stats": self.teacher.module.stats()} if self.cfg.standardize_teacher else {}

    def load_student(self, state: dict) -> None:
        # Checkpoints written before the student had a body/heads split name forward-body layers at the top.
        if any(k.startswith(("stem.", "stages.")) for k in state):
            state = {("body." + k if k.startswith(("stem.", "stages.")) else k): v for k, v in state.items()}
        self.student.load_state_dict(state)

    def targets(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Teacher features paired with student outputs, path by path."""
        return [feats[p.teacher_tap] for p in self.paths]

    def tensors(self, images: np.ndarray) -> torch.Tensor:
        s = self.teacher.scaling
        return data.to_tensor(images, s["scale"], s["mean"], s["std"], self.cfg.normalize_intensity)


def grid_tiles(cfg: TrainConfig, images: list[data.ScaledImage]) -> np.ndarray:
    """Every image's grid tiles, one after the other: what the service scores for these images."""
    return np.concatenate([tiles.cut(im.pixels, im.width, im.height, cfg.width, cfg.height, cfg.tile["overlap"])[0] for im in images])


def load_split(cfg: TrainConfig) -> tuple[list[data.Sample], list[data.Sample]]:
    root = data.category_dir(Path(cfg.data), cfg.category)
    return data.split(data.train_good(root), cfg.val_fraction, cfg.val_seed)


FLIPS = ((False, False), (True, False), (False, True), (True, True))  # (width, height): every view training draws


def flipped(x: torch.Tensor, flip: tuple[bool, bool]) -> torch.Tensor:
    dims = [d for d, on in zip((3, 2), flip) if on]
    return x.flip(dims) if dims else x


class TeacherCache:
    """The frozen teacher's taps of every training image in every flip, computed once: the teacher only ever sees
    clean images (denoising corrupts the student's copy), so its features are a fixed function of (image, flip)
    and recomputing them each epoch cost as much as the student's forward and backward pass together.
    Flipped features are computed from flipped images, not flipped afterwards: stride-2 'same' padding is
    asymmetric, so a flipped feature map sits on a shifted grid. Stored in float16 (a relative error of 1e-3 on
    features moves a cosine distance by about 1e-6)."""

    def __init__(self, run: Run, images: np.ndarray, batch: int, flips=FLIPS, device: torch.device = torch.device("cpu")):
        self.views: dict[tuple[bool, bool], list[torch.Tensor]] = {}
        self.device = device
        with torch.no_grad():  # kept where training runs: on a GPU, no copy per step
            for flip in flips:
                parts = [[f.half() for f in run.teacher.module(flipped(run.tensors(images[i:i + batch]).to(device), flip))]
                         for i in range(0, len(images), batch)]
                self.views[flip] = [torch.cat([p[k] for p in parts]) for k in range(len(parts[0]))]

    @staticmethod
    def mib(run: Run, images: int, views: int) -> float:
        return images * views * sum(c * h * w for c, h, w in run.teacher.shapes.values()) * 2 / 2 ** 20

    def get(self, idx: np.ndarray, flip: tuple[bool, bool] = (False, False)) -> list[torch.Tensor]:
        index = torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(self.device)
        return [f.index_select(0, index).float() for f in self.views[flip]]


def evaluate_loss(run: Run, images: np.ndarray, batch: int, cache: TeacherCache | None = None,
                  device: torch.device = torch.device("cpu")) -> list[float]:
    run.student.eval()
    sums = np.zeros(len(run.paths))
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = run.tensors(images[i:i + batch]).to(device)
            feats = cache.get(np.arange(i, min(i + batch, len(images)))) if cache else run.teacher.module(x)
            _, per = mixed_distillation_loss(run.targets(feats), run.student(x, feats), run.loss_weights)
            sums += np.array(per) * len(x)
    return list(sums / max(1, len(images)))


def teacher_caches(run: Run, train_imgs: np.ndarray, val_imgs: np.ndarray, batch: int, views, cache_mib: float,
                   device: torch.device = torch.device("cpu")) -> tuple[TeacherCache | None, TeacherCache | None]:
    """The teacher caches of both splits, or none when they would take more than cache_mib."""
    need = TeacherCache.mib(run, len(train_imgs), len(views)) + TeacherCache.mib(run, len(val_imgs), 1)
    if need > cache_mib:
        # A warning, not a note: every step then pays a teacher forward pass too, and the default cap is below
        # what larger teachers need (InceptionV3 on MTD: 5.6 GiB).
        log.warning("teacher features not cached: they would take %.0f MiB, more than --cache-mib %.0f; the teacher "
                    "runs at every step instead (slower). Raise --cache-mib to %.0f if the machine has the memory",
                    need, cache_mib, math.ceil(need))
        return None, None
    t0 = time.time()
    caches = TeacherCache(run, train_imgs, batch, views, device), TeacherCache(run, val_imgs, batch, FLIPS[:1], device)
    log.info("teacher taps of %d training images (%d views) and %d validation images cached (%.0f MiB) in %.0fs",
             len(train_imgs), len(views), len(val_imgs), need, time.time() - t0)
    return caches


def train(cfg: TrainConfig, resume: bool = True, cache_mib: float = 4096, device: str = "cpu", amp: bool = False) -> Path:
    """cache_mib: the most memory the teacher-feature cache may take; above it the teacher runs every step.
    device (auto, cpu, cuda) and amp are where and how the run computes, not what it learns, so they stay out of
    the config: a run may resume elsewhere, and the exported bundle is the same kind of file either way."""
    if not 0 <= cfg.denoise <= 1:
        raise ValueError(f"denoise is a fraction of training images, 0..1; got {cfg.denoise}")
    if not 0 < cfg.hard_fraction <= 1:
        raise ValueError(f"hard fraction is a fraction of locations, in (0, 1]; got {cfg.hard_fraction}")
    if not cfg.denoise_kinds or set(cfg.denoise_kinds) - set(TRAINING_KINDS):
        raise ValueError(f"denoise kinds must be some of {', '.join(TRAINING_KINDS)}; got {cfg.denoise_kinds}")
    if (cfg.fit == "tile") != (cfg.tile is not None):
        raise ValueError("tile settings (scale, overlap, blend) go with fit tile, and only with it")
    if cfg.tile and not (cfg.tile["scale"] > 0 and 0 <= cfg.tile["overlap"] < min(cfg.width, cfg.height)):
        raise ValueError(f"tile scale must be positive and overlap in [0, {min(cfg.width, cfg.height)}); got {cfg.tile}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    # Debian's torch starts with one thread.
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    dev = resolve_device(device)
    precision = Precision(dev, amp)
    seed_everything(cfg.seed)
    run = Run(cfg)  # built on the CPU, so a seed gives the same initial weights on every device
    run.teacher.module.to(dev)
    run.student.to(dev)
    fit_set, val_set = load_split(cfg)
    cache = out.parent / ".cache"
    if cfg.fit == "tile":
        scaled = data.prepare_scaled(fit_set, cfg.width, cfg.height, cfg.tile["scale"], cache)
        val_imgs = grid_tiles(cfg, data.prepare_scaled(val_set, cfg.width, cfg.height, cfg.tile["scale"], cache))
        # As many crops an epoch as the grid has tiles, so an epoch covers each image's area about once. Until the
        # first epoch draws them, the grid's own tiles stand in (the teacher's standardisation reads them).
        crops = [len(tiles.tile_grid(im.width, im.height, cfg.width, cfg.height, cfg.tile["overlap"])) for im in scaled]
        train_imgs = grid_tiles(cfg, scaled)
    else:
        train_imgs = data.prepare(fit_set, cfg.width, cfg.height, cfg.fit, cache)
        val_imgs = data.prepare(val_set, cfg.width, cfg.height, cfg.fit, cache)
    log.info("teacher %s taps %s; %d training, %d validation images; paths %s; device %s%s",
             cfg.teacher, run.teacher.taps, len(fit_set), len(val_set), [p.output_name(run.taps) for p in run.paths], dev,
             " (mixed precision)" if amp else "")

    steps_per_epoch = max(1, len(train_imgs) // cfg.batch)
    if cfg.epochs * steps_per_epoch < cfg.min_steps:
        cfg = replace(cfg, epochs=math.ceil(cfg.min_steps / steps_per_epoch))
        log.info("%d steps an epoch: %d epochs for at least %d steps", steps_per_epoch, cfg.epochs, cfg.min_steps)
    opt = torch.optim.Adam([p for p in run.student.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.1)
    start, best = 0, float("inf")
    ckpt = out / "last.pt"
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu")
        if state["config"] != asdict(cfg):
            raise ValueError(f"{ckpt} was written with another configuration; use a new --out or --no-resume")
        run.load(state)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        precision.load_state_dict(state.get("scaler"))
        start, best = state["epoch"], state["best"]
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        torch.set_rng_state(state["rng"]["torch"])
        log.info("resumed from %s at epoch %d", ckpt, start)
    elif cfg.standardize_teacher:
        run.teacher.module.fit(run.tensors(train_imgs[i:i + cfg.batch]).to(dev) for i in range(0, len(train_imgs), cfg.batch))
        log.info("teacher taps standardised with statistics of %d training images", len(train_imgs))
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    views = FLIPS if cfg.augment else FLIPS[:1]
    if cfg.fit == "tile":  # fresh crops every epoch: the teacher sees each once, so only validation is cached
        fits = TeacherCache.mib(run, len(val_imgs), 1) <= cache_mib
        train_cache, val_cache = None, TeacherCache(run, val_imgs, cfg.batch, FLIPS[:1], dev) if fits else None
    else:
        train_cache, val_cache = teacher_caches(run, train_imgs, val_imgs, cfg.batch, views, cache_mib, dev)

    gen = np.random.default_rng(cfg.seed)
    with open(out / "log.jsonl", "a") as logf:
        for epoch in range(start, cfg.epochs):
            t0 = time.time()
            run.student.train()
            if cfg.fit == "tile":
                train_imgs = np.concatenate([tiles.random_crops(im.pixels, im.width, im.height, cfg.width, cfg.height, n, gen)
                                             for im, n in zip(scaled, crops)])
            order = gen.permutation(len(train_imgs))
            total = 0.0
            bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, mininterval=5)
            for step in bar:
                idx = np.sort(order[step * cfg.batch:(step + 1) * cfg.batch])
                images = train_imgs[idx]
                shown = corrupt(images, cfg.denoise, gen, cfg.denoise_kinds) if cfg.denoise > 0 else images
                # Two draws in this order whether or not they flip, so runs stay comparable with earlier ones.
                flip = (bool(gen.random() < 0.5), bool(gen.random() < 0.5)) if cfg.augment else (False, False)
                xs = flipped(run.tensors(shown).to(dev), flip)
                if train_cache:
                    feats = train_cache.get(idx, flip)
                else:
                    with torch.no_grad():
                        feats = run.teacher.module(xs if shown is images else flipped(run.tensors(images).to(dev), flip))
                with precision.autocast():
                    # A reverse student encodes its own (corrupted) input; only a clean one may reuse the teacher's pass.
                    student_feats = run.student(xs, feats if cfg.denoise == 0 else None)
                # The loss in float32: 1 - cos of float16 features near 1 loses most of its digits.
                loss, _ = mixed_distillation_loss(run.targets([f.float() for f in feats]), [f.float() for f in student_feats],
                                                  run.loss_weights, cfg.hard_fraction)
                opt.zero_grad(set_to_none=True)
                precision.step(loss, opt)
                sched.step()
                total += float(loss)
                bar.set_postfix(loss=f"{float(loss):.4f}")
            val = evaluate_loss(run, val_imgs, cfg.batch, val_cache, dev)
            val_total = float(np.dot(val, run.loss_weights))
            rec = {"epoch": epoch + 1, "train_loss": total / steps_per_epoch, "val_loss": val_total,
                   "val_per_path": dict(zip([p.output_name(run.taps) for p in run.paths], val)),
                   "lr": sched.get_last_lr()[0], "seconds": round(time.time() - t0, 1), "device": dev.type, **({"amp": True} if amp else {})}
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            log.info("epoch %d/%d train %.4f val %.4f (%.0fs)", epoch + 1, cfg.epochs, rec["train_loss"], val_total, rec["seconds"])
            student_state = {k: v.cpu() for k, v in run.student.state_dict().items()}  # checkpoints load anywhere
            state = {"config": asdict(cfg), "student": student_state, **run.extra_state(), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "epoch": epoch + 1, "best": min(best, val_total), "scaler": precision.state_dict(),
                     "rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}}
            torch.save(state, out / "last.pt.tmp")
            (out / "last.pt.tmp").replace(ckpt)
            if val_total < best:
                best = val_total
                torch.save({"config": asdict(cfg), "student": student_state, **run.extra_state(), "epoch": epoch + 1, "val_loss": val_total}, out / "best.pt")
    return out
