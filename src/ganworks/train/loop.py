"""The one training loop, for every experiment.

Per iteration it runs the objective's schedule (e.g. D then G for Improved-GAN; G then n_dis × D
for SN-GAN): a "d" phase takes the stream's next batch, a "g" phase reuses it. Each phase zeroes its
player's gradients, backpropagates the objective's loss with the other player frozen, steps the
optimizer and updates that player's moving average. Every ``eval.every`` iterations (default: once
per epoch) it evaluates, writes ``metrics.jsonl``, TensorBoard scalars and a sample grid, and saves
``checkpoints/last.pt`` (and ``best.pt``) atomically.

What is guaranteed:

* Losses are checked for NaN/Inf every ``train.log_every`` iterations without a per-step device
  sync, and before every save every parameter, buffer, optimizer state and average is checked
  (one sync): a divergence stops the run with ``TrainingDiverged`` before anything is written, so
  ``last.pt`` is always the last finite state (the message names it, or says none was written).
* SIGINT (Ctrl-C) and SIGTERM (what schedulers send) finish the current iteration, save
  ``last.pt`` with the running loss window and stop; ``train`` returns a row with
  ``interrupted`` set to the signal's name (the CLI exits 130 / 143). A second signal aborts at once.
* Resuming drops ``metrics.jsonl`` rows written after the checkpoint (a kill between a row and its
  save) and stale ``*.tmp`` files, and continues the loss window, so the resumed run writes the
  same rows and reaches the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from torchvision.utils import save_image

from ..checkpoints import nonfinite, remove_stale_tmp, save_atomic
from ..data.scaling import to_uint8
from ..errors import Interrupted, TrainingDiverged
from .compiled import PhaseLoss
from .experiment import Experiment


def _set_requires_grad(params, flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)


#: exit status of a run stopped by each signal (128 + signal number, the shell's convention)
EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


@contextmanager
def _graceful_interrupt():
    """Turn the first SIGINT/SIGTERM into a flag the loop polls; restore the handlers afterwards.

    A second signal aborts at once (``train`` turns that into ``Interrupted``), except inside a save
    (``flag["saving"]``), which it never tears: the loop stops right after the save.
    """
    flag = {"stop": None, "saving": False}

    def handler(signum, frame):
        if flag["stop"]:
            if flag["saving"]:  # a second signal inside the save: let the save finish, then stop as planned
                return
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(EXIT_CODES["SIGTERM"])
        flag["stop"] = signal.Signals(signum).name

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not in the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)


class RunLog:
    """metrics.jsonl + TensorBoard + sample grids in a run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        self._tb = None
        self._purge_step = None  # set by rollback: TensorBoard hides the events after the checkpoint

    @property
    def tb(self):
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=self._purge_step)
            except ImportError:  # tensorboard missing: jsonl still has everything
                self._tb = False
        return self._tb

    def rollback(self, iteration: int) -> int:
        """Drop rows of ``metrics.jsonl`` after ``iteration`` (written before a save that never
        happened) and a torn last line, and have TensorBoard purge its events after ``iteration``;
        returns how many rows were dropped."""
        if iteration > 0:
            self._purge_step = iteration + 1
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return 0
        keep, dropped = [], 0
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                dropped += 1
                continue
            if row.get("iteration", 0) > iteration:
                dropped += 1
            else:
                keep.append(line)
        if dropped:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(line + "\n" for line in keep))
            os.replace(tmp, path)
        return dropped

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
            with exp.phase_context(phase):  # DDP wrapping / autocast (distributed.py, amp.py)
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
    if getattr(exp, "noise", None) is not None:
        exp.noise.mark_period()  # one iteration's draws: what the noise prefetch expects next
    pos["iteration"] += 1
    return out


def train(exp: Experiment, run_dir: Path, progress: bool = True) -> dict:
    """Train ``exp`` until ``exp.total_iterations``, writing into ``run_dir``; returns the last row.

    A row with ``interrupted`` ("SIGINT"/"SIGTERM") means a signal stopped the run after saving.
    """
    from tqdm import tqdm

    cfg = exp.cfg
    run_dir = Path(run_dir)
    remove_stale_tmp(run_dir)
    log = RunLog(run_dir)
    pos = exp.position
    log.rollback(pos["iteration"])
    stream, objective = exp.stream, exp.objective
    eval_every = cfg["eval"]["every"] or exp.iterations_per_epoch
    log_every = max(1, cfg["train"]["log_every"])
    pending: list[tuple[int, str, dict]] = []  # (iteration, phase, logs) not yet checked
    # losses since the last evaluation row, restored from the checkpoint when resuming mid-window
    running: dict[str, list[float]] = {k: list(v) for k, v in getattr(exp, "loop_state", {}).get("running", {}).items()}
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
                    raise _diverged(exp, run_dir, f"{name} became {v} at iteration {it + 1} ({phase.upper()} step)")
                running.setdefault(name, []).append(v)
        pending.clear()

    bar = tqdm(
        total=exp.total_iterations,
        initial=pos["iteration"],
        disable=not progress,
        desc=cfg["meta"].get("preset", "train"),
        unit="it",
        dynamic_ncols=True,
    )
    agree = getattr(exp, "agree_stop", None)  # several processes: every rank stops at the same iteration
    try:
        with _graceful_interrupt() as interrupt, _second_signal_is_one_line(run_dir):
            while pos["iteration"] < exp.total_iterations:
                it = pos["iteration"]
                pending.extend((it, phase, logs) for phase, logs in train_iteration(exp))
                it += 1
                if agree is not None:
                    interrupt["stop"] = agree(interrupt["stop"])
                bar.update(1)
                done = it >= exp.total_iterations or bool(budget_s and time.time() - t_start > budget_s)
                evaluate = it % eval_every == 0 or done
                if it % log_every == 0 or evaluate or interrupt["stop"]:
                    check_and_accumulate()
                    shown = {k: f"{v[-1]:.4g}" for k, v in running.items() if k in ("loss_d", "loss_g", "train_error")}
                    for k in ("test_error_ema", "test_error"):
                        if k in last_row:
                            shown["test_err"] = f"{last_row[k]:.4f}"
                            break
                    bar.set_postfix(shown)
                if evaluate or interrupt["stop"]:
                    _check_finite(exp, run_dir)  # before the row is written: nothing of a diverged state
                if evaluate:
                    elapsed = time.time() - t_start
                    last_row = _evaluate(exp, log, running, elapsed, (it - it_start) * images_per_iteration, final=done)
                    running.clear()
                    with _saving(interrupt):
                        _save(exp, run_dir, last_row, running)
                elif interrupt["stop"]:
                    with _saving(interrupt):
                        _save(exp, run_dir, None, running)  # no row: the resumed run writes this window's row
                    last_row = {"iteration": it}
                if interrupt["stop"]:
                    tqdm.write(
                        f"interrupted ({interrupt['stop']}): saved {run_dir / 'checkpoints' / 'last.pt'} at "
                        f"iteration {it}; continue with: ganworks train --resume {run_dir}",
                        file=sys.stderr,
                    )
                    last_row["interrupted"] = interrupt["stop"]
                    break
                if done:
                    break
    finally:
        bar.close()
        log.close()
    return last_row


@contextmanager
def _saving(interrupt: dict):
    interrupt["saving"] = True
    try:
        yield
    finally:
        interrupt["saving"] = False


@contextmanager
def _second_signal_is_one_line(run_dir: Path):
    """A second Ctrl-C (or SIGTERM) outside a save stops at once: one line saying what is on disk."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit) as e:
        if isinstance(e, SystemExit) and e.code != EXIT_CODES["SIGTERM"]:
            raise
        name = "SIGINT" if isinstance(e, KeyboardInterrupt) else "SIGTERM"
        remove_stale_tmp(run_dir)
        last = run_dir / "checkpoints" / "last.pt"
        kept = (
            f"{last} is intact (the last save): continue with ganworks train --resume {run_dir}"
            if last.is_file()
            else "no checkpoint was written yet: start the run again"
        )
        raise Interrupted(
            f"interrupted twice ({name}): stopped at once without saving; {kept}", EXIT_CODES[name]
        ) from None


def _diverged(exp: Experiment, run_dir: Path, what: str) -> TrainingDiverged:
    """The divergence error, naming the last good checkpoint if there is one."""
    last = run_dir / "checkpoints" / "last.pt"
    o = exp.cfg["optim"]
    lr = f"optim.lr (now {o['lr']:g})"
    good, at = last.is_file(), ""
    if good:
        try:
            from ..checkpoints import load_checkpoint

            saved = load_checkpoint(last)
            at = f" (iteration {saved['position']['iteration']})"
            good = not nonfinite({"models": saved["models"], "ema": saved.get("ema", {})})
        except Exception:  # noqa: BLE001 - the message must come out whatever last.pt holds
            at = ""
    if last.is_file() and not good:
        return TrainingDiverged(
            f"{what}; {last} is no good checkpoint either (it is unreadable or holds non-finite weights): "
            f"start the run again with a lower {lr} and a new --out"
        )
    if good:
        return TrainingDiverged(
            f"{what}; the run stopped without saving, so {last}{at} is the last good checkpoint: lower {lr} "
            f"or check the data scaling and start again (--resume {run_dir} keeps the same lr and will "
            f"diverge again)"
        )
    return TrainingDiverged(
        f"{what}; the run stopped before its first checkpoint, so no checkpoint was written: start again "
        f"with a lower {lr} or check the data scaling"
    )


def _check_finite(exp: Experiment, run_dir: Path) -> None:
    """Every parameter, buffer, optimizer state and average must be finite before a save (one sync)."""
    bad = nonfinite(
        {
            "models": {"G": exp.G.state_dict(), "D": exp.D.state_dict()},
            "optimizers": {k: o.state_dict()["state"] for k, o in exp.optimizers.items()},
            "ema": {k: e.model.state_dict() for k, e in exp.ema.items()},
        }
    )
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise _diverged(
            exp,
            run_dir,
            f"at iteration {exp.position['iteration']} the training state became "
            f"non-finite ({', '.join(bad[:3])}{more})",
        )


def _evaluate(
    exp: Experiment, log: RunLog, running: dict, elapsed: float, images_seen: int, final: bool = False
) -> dict:
    pos = exp.position
    row = {
        "iteration": pos["iteration"],
        "epoch": pos["epoch"] + pos["index"] / exp.stream.batches_per_epoch,
        "wall_time_s": round(elapsed, 3),
        "images_per_s": round(images_seen / max(elapsed, 1e-9), 2),
    }
    row.update({k: sum(v) / len(v) for k, v in running.items() if v})
    row.update({f"lr_{k}": s.get_last_lr()[0] for k, s in exp.schedulers.items()})
    row.update(exp.evaluate(final=final))
    n = exp.cfg["eval"]["grid"]
    if n:
        grid = log.grid(to_uint8(exp.samples(n), exp.scale).cpu(), pos["iteration"])
        row["samples"] = str(grid.relative_to(log.run_dir))
    log.write(row)
    return row


def _save(exp: Experiment, run_dir: Path, row: dict | None, running: dict | None = None) -> None:
    """Write last.pt (and best.pt when ``row`` improves ``eval.best``, or always without one)."""
    best_key, mode = exp.cfg["eval"]["best"], exp.cfg["eval"]["best_mode"]
    improved = False
    if row is not None and best_key and best_key in row:
        value = row[best_key]
        if exp.best is None or (value < exp.best["value"] if mode == "min" else value > exp.best["value"]):
            exp.best = {"metric": best_key, "value": value, "iteration": row["iteration"]}
            improved = True
    state = exp.state_dict()
    state["loop"] = {"running": {k: list(v) for k, v in (running or {}).items()}}
    # best.pt first: last.pt is the commit point, so a kill between the two leaves last.pt behind
    # and --resume redoes (and rewrites) both; a final last.pt means the run is complete
    if improved or not best_key:
        save_atomic(state, run_dir / "checkpoints" / "best.pt")
    save_atomic(state, run_dir / "checkpoints" / "last.pt")
