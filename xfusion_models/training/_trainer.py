"""The training loop: seeded, resumable, logged to CSV and a PNG plot.

Batches are drawn from a generator seeded by ``(seed, iteration)``, and the training
state (model, EMA, optimizer, scheduler, torch RNG, iteration) is saved together, so a
resumed run continues on exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import ActualPairDataset, SamplingConfig, VirtualClipDataset
from ..metrics import psnr, ssim
from ._losses import pixel_loss
from ._options import ModelSpec, TrainOptions
from ._records import TrainLog
from ._schedule import CosineRestartSchedule, WeightEMA

__all__ = ["TrainData", "build_model", "train"]

STATE_FILE = "checkpoints/latest.pth"


@dataclass(frozen=True)
class TrainData:
    """Folders and lists of one run (the seed's ``--dir-*`` and meta-info flags)."""

    lr_train: Path
    hr_train: Path
    meta_train: Path
    lr_val: Path
    hr_val: Path
    meta_val: Path
    context_root: Path | None = None
    index_map: Path | None = None


def build_model(spec: ModelSpec) -> torch.nn.Module:
    """Model from the public builders: ``edvr_stf``/``swin_xvr(preset, **overrides)``."""
    import xfusion_models

    builder = getattr(xfusion_models, spec.arch)
    return builder(spec.preset, **spec.overrides)


def _datasets(opt: TrainOptions, data: TrainData):
    val_cfg = SamplingConfig(
        **{**opt.data.model_dump(), "lr_crop": opt.val.lr_crop, "augment": False}
    )
    context_root, index_map = data.context_root, data.index_map

    def make(lr: Path, hr: Path, meta: Path, cfg: SamplingConfig) -> torch.utils.data.Dataset:
        if index_map is None:
            return VirtualClipDataset(lr, hr, meta, cfg, seed=opt.seed)
        if context_root is None:
            raise ValueError("--meta_info_context needs --dataroot_context (the full LR run)")
        return ActualPairDataset(lr, hr, meta, context_root, index_map, cfg, seed=opt.seed)

    return (
        make(data.lr_train, data.hr_train, data.meta_train, opt.data),
        make(data.lr_val, data.hr_val, data.meta_val, val_cfg),
    )


def _batch(dataset, seed: int, iteration: int, size: int) -> tuple[torch.Tensor, ...]:
    rng = np.random.default_rng([seed, iteration])
    items = [dataset.sample(int(i), rng) for i in rng.integers(0, len(dataset), size)]
    return tuple(torch.stack([it[k] for it in items]) for k in ("lq", "hq", "gt"))


@torch.no_grad()
def validate(model: torch.nn.Module, dataset, seed: int, max_samples: int) -> dict[str, float]:
    """Mean PSNR/SSIM (8-bit) over evenly spaced validation keys with fixed noise."""
    model.eval()
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(max_samples, len(dataset))).astype(int))
    scores = []
    for index in picks:
        item = dataset.sample(int(index), np.random.default_rng([seed, 10**9, int(index)]))
        out = model(item["lq"][None], item["hq"][None])[0, 0].clamp(0, 1).numpy()
        truth = item["gt"][0].numpy()
        scores.append((psnr(out, truth), ssim(out, truth)))
    psnrs, ssims = zip(*scores)
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))}


def train(
    opt: TrainOptions,
    data: TrainData,
    out_dir: str | Path,
    *,
    resume: bool = False,
    pretrain: str | Path | None = None,
    model_factory: Callable[[ModelSpec], torch.nn.Module] = build_model,
    progress: bool = True,
) -> dict:
    """Run (or continue) a training; returns a summary and leaves files in ``out_dir``.

    ``out_dir`` receives ``checkpoints/latest.pth`` (full state), ``metrics.csv``,
    ``training.png`` and ``<name>.pth`` (the weights, via ``save_checkpoint``); the
    weights at the end of each cosine period go to ``checkpoints/<name>_iter<N>.pth``.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    if opt.train.threads is not None:
        torch.set_num_threads(opt.train.threads)
    torch.manual_seed(opt.seed)
    train_set, val_set = _datasets(opt, data)
    model = model_factory(opt.model)
    if pretrain is not None:
        _load_pretrained(model, pretrain)
    spec, sched = opt.train, opt.train.scheduler
    params, optimizer, scheduler = _optimisation(model, opt)
    ema = WeightEMA(model, spec.ema_decay) if spec.ema_decay is not None else None
    log = TrainLog(out / "metrics.csv", out / "training.png")
    start = 0
    if resume and (out / STATE_FILE).is_file():
        start = _restore(out / STATE_FILE, model, ema, optimizer, scheduler)
    log.truncate_after(start)
    loss_fn = pixel_loss(spec.loss, spec.charbonnier_eps)
    running, t0 = [], time.perf_counter()
    boundaries = set(np.cumsum(sched.periods).tolist())
    bar = tqdm(
        range(start, spec.iters),
        desc=opt.name,
        disable=not progress,
        initial=start,
        total=spec.iters,
    )
    for it in bar:
        model.train()
        lq, hq, gt = _batch(train_set, opt.seed, it, spec.batch_size)
        loss = loss_fn(model(lq, hq), gt)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if spec.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(model)
        running.append(loss.item())
        done = it + 1
        bar.set_postfix(loss=f"{running[-1]:.4f}")
        at_boundary = done in boundaries
        at_val = done % opt.val.every == 0 or done == spec.iters or at_boundary
        if at_val or done % max(1, opt.val.every // 10) == 0:
            row = {"iter": done, "loss": float(np.mean(running)), "lr": scheduler.get_last_lr()[0]}
            if at_val:
                row |= _validation_row(ema.model if ema else model, val_set, opt)
            log.append(row | {"elapsed_s": time.perf_counter() - t0})
            running = []
        if done % opt.checkpoint_every == 0 or done == spec.iters:
            _save_state(out / STATE_FILE, done, model, ema, optimizer, scheduler)
        if at_boundary:  # the rate is at its minimum: keep these weights
            snapshot = out / "checkpoints" / f"{opt.name}_iter{done}.pth"
            _export(ema.model if ema else model, snapshot, opt, ema is not None)
    log.plot(title=opt.name)
    weights = out / f"{opt.name}.pth"
    _export(ema.model if ema else model, weights, opt, ema is not None)
    last = log.last_validation()
    return {"iters": spec.iters, "resumed_from": start, "weights": str(weights), **last}


def _validation_row(model: torch.nn.Module, val_set: Any, opt: TrainOptions) -> dict[str, float]:
    scores = validate(model, val_set, opt.seed, opt.val.max_samples)
    return {"val_psnr": scores["psnr"], "val_ssim": scores["ssim"]}


def _optimisation(
    model: torch.nn.Module, opt: TrainOptions
) -> tuple[list[torch.nn.Parameter], torch.optim.Adam, CosineRestartSchedule]:
    """The parameters that train, their Adam optimiser and its cosine-restart schedule."""
    spec, sched = opt.train, opt.train.scheduler
    params = _trainable_parameters(model, spec.trainable)
    optimizer = torch.optim.Adam(
        params, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay
    )
    scheduler = CosineRestartSchedule(
        optimizer, sched.periods, sched.restart_weights, sched.eta_min
    )
    return params, optimizer, scheduler


def _trainable_parameters(
    model: torch.nn.Module, prefixes: list[str] | None
) -> list[torch.nn.Parameter]:
    """Parameters to optimise; with ``prefixes`` every other parameter is frozen."""
    if prefixes is None:
        return list(model.parameters())
    chosen = []
    for name, param in model.named_parameters():
        keep = any(name == p or name.startswith(p + ".") for p in prefixes)
        param.requires_grad_(keep)
        if keep:
            chosen.append(param)
    if not chosen:
        names = sorted({n.split(".")[0] for n, _ in model.named_parameters()})
        raise ValueError(
            f"train.trainable {prefixes} matches no parameter of {type(model).__name__}; "
            f"top-level modules: {names}"
        )
    return chosen


def _save_state(path: Path, it: int, model, ema, optimizer, scheduler) -> None:
    state = {
        "iter": it,
        "params": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    if ema is not None:
        state["params_ema"] = ema.model.state_dict()
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _restore(path: Path, model, ema, optimizer, scheduler) -> int:
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["params"])
    if ema is not None:
        ema.model.load_state_dict(state.get("params_ema", state["params"]))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["iter"])


def _load_pretrained(model: torch.nn.Module, path: str | Path) -> None:
    import xfusion_models

    # A gated EDVR-STF may start from ungated weights: only the gate may be missing.
    gate = getattr(model, "optional_module", None)
    xfusion_models.load_checkpoint(model, path, allow_missing_prefix=gate)


def _export(model: torch.nn.Module, path: Path, opt: TrainOptions, is_ema: bool) -> None:
    """Final weights in the registry's checkpoint format (BasicSR key per arch)."""
    import xfusion_models

    extra = {"training_options": opt.model_dump(mode="json"), "ema": is_ema}
    xfusion_models.save_checkpoint(model, path, extra=extra)
