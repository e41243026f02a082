"""The one training loop, for every experiment.

Per iteration it runs the objective's schedule (e.g. D then G for Improved-GAN; G then n_dis × D
for SN-GAN): a "d" phase takes the stream's next batch, a "g" phase reuses it. Each phase zeroes its
player's gradients, backpropagates the objective's loss with the other player frozen, steps the
optimizer and updates that player's moving average. Every ``eval.every`` iterations (default: once
per epoch) it evaluates, writes ``metrics.jsonl``, TensorBoard scalars and a sample grid, and saves
``checkpoints/last.pt`` (and ``best.pt``) atomically.

Losses are checked for NaN/Inf every ``train.log_every`` iterations without a per-step device
sync; a bad loss stops the run with a message naming the iteration and phase, before anything is
written, so the last good checkpoint stays intact. Ctrl-C finishes the current iteration, saves a
checkpoint and exits cleanly (a second Ctrl-C aborts at once).
"""

from __future__ import annotations

import json
import math
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torchvision.utils import save_image

from ..data.scaling import to_uint8
from ..errors import TrainingDiverged
from .checkpoint import save_atomic
from .compiled import PhaseLoss
from .experiment import Experiment


def _set_requires_grad(params, flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


@contextmanager
def _graceful_interrupt():
    """Turn the first SIGINT into a flag the loop polls; restore the handler afterwards."""
    flag = {"stop": False}

    def handler(signum, frame):
        if flag["stop"]:
            raise KeyboardInterrupt
        flag["stop"] = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not in the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class RunLog:
    """metrics.jsonl + TensorBoard + sample grids in a run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        self._tb = None

    @property
    def tb(self):
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tb"))
            except ImportError:  # tensorboard missing: jsonl still has everything
                self._tb = False
        return self._tb

    def write(self, row: dict) -> None:
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb:
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("iteration",):
                    self.tb.add_scalar(k, v, row["iteration"])
            self.tb.flush()

    def grid(self, images_uint8: torch.Tensor, iteration: int) -> Path:
        path = self.run_dir / "samples" / f"iter_{iteration:07d}.png"
        nrow = max(1, int(math.sqrt(images_uint8.shape[0])))
        save_image(images_uint8.float().div(255), path, nrow=nrow, padding=1)
        return path

    def close(self) -> None:
        if self.tb:
            self.tb.close()


def train_iteration(exp: Experiment) -> list[tuple[str, dict]]:
    """One iteration of the objective's schedule, then the lr schedules; returns each phase's logs.

    A "d" phase takes the stream's next batch, a "g" phase reuses it. The other player's
    parameters are frozen during a phase, so no gradient is computed for them. Parametrized
    weights (weight norm, spectral norm) are computed once per phase and shared by its forward
    passes: for spectral norm that is Algorithm 1's one power iteration per update. The phase's
    loss is ``exp.phase_loss`` (train/compiled.py): eager, or compiled with ``train.compile``.
    """
    pos, stream, objective = exp.position, exp.stream, exp.objective
    phase_loss = getattr(exp, "phase_loss", None) or PhaseLoss(objective)
    frozen = {"d": exp.params["g"], "g": exp.params["d"]}
    out = []
    batch = None
    for phase in objective.schedule:
        if phase == "d":
            batch = stream.batch(pos["epoch"], pos["index"])
            pos["index"] += 1
            if pos["index"] >= stream.batches_per_epoch:
                pos["epoch"], pos["index"] = pos["epoch"] + 1, 0
        _set_requires_grad(frozen[phase], False)
        try:
            loss, logs = phase_loss(phase, batch)
            opt = exp.optimizers[phase]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        finally:
            _set_requires_grad(frozen[phase], True)
        objective.after_step(phase)
        if phase in exp.ema:
            exp.ema[phase].update(exp.D if phase == "d" else exp.G)
        out.append((phase, {f"loss_{phase}": loss.detach(), **{k: v.detach() for k, v in logs.items()}}))
    for scheduler in exp.schedulers.values():
        scheduler.step()
    pos["iteration"] += 1
    return out


def train(exp: Experiment, run_dir: Path, progress: bool = True) -> dict:
    """Train ``exp`` until ``exp.total_iterations``, writing into ``run_dir``; returns the last row."""
    from tqdm import tqdm

    cfg = exp.cfg
    log = RunLog(run_dir)
    pos = exp.position
    stream, objective = exp.stream, exp.objective
    eval_every = cfg["eval"]["every"] or exp.iterations_per_epoch
    log_every = max(1, cfg["train"]["log_every"])
    pending: list[tuple[int, str, dict]] = []  # (iteration, phase, logs) not yet checked
    running: dict[str, list[float]] = {}
    last_row: dict = {}
    t_start, it_start = time.time(), pos["iteration"]
    images_per_iteration = stream.batch_size * objective.schedule.count("d")
    budget_s = cfg["train"]["max_minutes"] * 60

    def check_and_accumulate() -> None:
        """One device sync for all losses since the last check; the first non-finite one stops the run."""
        if not pending:
            return
        flat = torch.stack([v.float().reshape(()) for _, _, logs in pending for v in logs.values()]).tolist()
        values = iter(flat)
        for it, phase, logs in pending:
            for name in logs:
                v = next(values)
                if not math.isfinite(v):
                    raise TrainingDiverged(
                        f"{name} became {v} at iteration {it + 1} ({phase.upper()} step); the run stopped "
                        f"without saving, so {run_dir / 'checkpoints' / 'last.pt'} is the last good state: "
                        f"lower optim.lr or check the data scaling, then --resume or restart")
                running.setdefault(name, []).append(v)
        pending.clear()

    bar = tqdm(total=exp.total_iterations, initial=pos["iteration"], disable=not progress,
               desc=cfg["meta"].get("preset", "train"), unit="it", dynamic_ncols=True)
    try:
        with _graceful_interrupt() as interrupt:
            while pos["iteration"] < exp.total_iterations:
                it = pos["iteration"]
                pending.extend((it, phase, logs) for phase, logs in train_iteration(exp))
                it += 1
                bar.update(1)
                done = it >= exp.total_iterations or (budget_s and time.time() - t_start > budget_s)
                if it % log_every == 0 or done or interrupt["stop"] or it % eval_every == 0:
                    check_and_accumulate()
                    shown = {k: f"{v[-1]:.4g}" for k, v in running.items() if k in ("loss_d", "loss_g", "train_error")}
                    for k in ("test_error_ema", "test_error"):
                        if k in last_row:
                            shown["test_err"] = f"{last_row[k]:.4f}"
                            break
                    bar.set_postfix(shown)
                if it % eval_every == 0 or done or interrupt["stop"]:
                    elapsed = time.time() - t_start
                    last_row = _evaluate(exp, log, running, elapsed, (it - it_start) * images_per_iteration, final=done)
                    running.clear()
                    _save(exp, run_dir, last_row)
                if interrupt["stop"]:
                    bar.write(f"interrupted: saved {run_dir / 'checkpoints' / 'last.pt'} at iteration {it}; "
                              f"continue with: ganworks train --resume {run_dir}")
                    last_row["interrupted"] = True
                    break
                if done:
                    break
    finally:
        bar.close()
        log.close()
    return last_row


def _evaluate(exp: Experiment, log: RunLog, running: dict, elapsed: float, images_seen: int, final: bool = False) -> dict:
    pos = exp.position
    row = {"iteration": pos["iteration"], "epoch": pos["epoch"] + pos["index"] / exp.stream.batches_per_epoch,
           "wall_time_s": round(elapsed, 3), "images_per_s": round(images_seen / max(elapsed, 1e-9), 2)}
    row.update({k: sum(v) / len(v) for k, v in running.items() if v})
    row.update({f"lr_{k}": s.get_last_lr()[0] for k, s in exp.schedulers.items()})
    row.update(exp.evaluate(final=final))
    n = exp.cfg["eval"]["grid"]
    if n:
        grid = log.grid(to_uint8(exp.samples(n), exp.scale).cpu(), pos["iteration"])
        row["samples"] = str(grid.relative_to(log.run_dir))
    log.write(row)
    return row


def _save(exp: Experiment, run_dir: Path, row: dict) -> None:
    best_key, mode = exp.cfg["eval"]["best"], exp.cfg["eval"]["best_mode"]
    improved = False
    if best_key and best_key in row:
        value = row[best_key]
        if exp.best is None or (value < exp.best["value"] if mode == "min" else value > exp.best["value"]):
            exp.best = {"metric": best_key, "value": value, "iteration": row["iteration"]}
            improved = True
    state = exp.state_dict()
    save_atomic(state, run_dir / "checkpoints" / "last.pt")
    if improved or not best_key:
        save_atomic(state, run_dir / "checkpoints" / "best.pt")
