"""Whole training runs side by side: the authors' MNIST script and ``ganworks train improved-gan/mnist-100``.

Issue 12: the reference script (openai/improved-gan ``train_mnist_feature_matching.py``, Theano,
run by ``ref_mnist_train.py``) and ganworks' preset train with the same ``seed_data`` (so the same
100 labelled images and the same data-dependent-init batch) and the same seed number for the same
number of epochs, over several seeds. The two cannot agree number for number (different random
generators draw the noise, z and the minibatch order); they must agree within their seed-to-seed
spread. Each run has one thread; with ``--jobs 2`` (default) one worker runs the reference seeds
one after the other and another the ganworks seeds, at the same time, so both sides see the same
machine; a worker whose side is done takes the other side's remaining seeds.

Recorded per epoch and seed: the test errors (of 10,000) of the raw D and of the averaged D. The
reference script's own number is its averaged D (``test_batch`` has ``givens=disc_avg_givens``),
an average started at zero and never bias-corrected; ganworks' average is bias-corrected (a
documented deviation), so the reference lane also evaluates its average divided by (1 − 0.9999^t),
which is ganworks' definition: that column is the like-for-like comparison, the uncorrected one is
shown beside it.

    PYTHONPATH=src python benchmarks/reference_equivalence/side_by_side.py run --seeds 1 2 3 --epochs 30
    PYTHONPATH=src python benchmarks/reference_equivalence/side_by_side.py report

``run`` is resumable: a finished (side, seed) is skipped; an interrupted ganworks run resumes from
its checkpoint; an interrupted reference run starts again (the script has no checkpoints). Runs go
to ``--work`` (default ``~/.cache/ganworks/side_by_side``), outside the checkout. ``report`` writes
``benchmarks/results/side_by_side_mnist.{json,md,png}`` (``side_by_side_mnist<labels>.*`` with
``--labels 20|50|200``: Table 1's other rows, the reference's ``--count`` = labels / 10; use another
``--work`` per label count).

Verdict rule (stated in the report): at the final epoch, for the raw D and for the averaged D, the
difference of the two sides' means must be at most twice the pooled seed-to-seed standard
deviation, sqrt((s_ref² + s_ours²) / 2).

Power (``power``, also part of ``report``): beside each verdict, the smallest true difference of the
means that the comparison would detect 80 % of the time (``power_of``), for the rule itself and for a
two-sided t-test at α = 0.05, and the rule's false-alarm rate; with few seeds a side the rule can
hardly fail. ``power`` adds these to the existing results JSON and rewrites the .md from the JSON alone
(no runs needed):

    PYTHONPATH=src python benchmarks/reference_equivalence/side_by_side.py power
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
HOME = Path("~/.cache/ganworks").expanduser()
LABELS = (20, 50, 100, 200)  # Table 1's label counts: presets improved-gan/mnist-<labels>


def preset(labels: int) -> str:
    return f"improved-gan/mnist-{labels}"


def result_stem(labels: int) -> Path:
    """benchmarks/results/side_by_side_mnist (100 labels, the issue's runs) or ..._mnist<labels>."""
    return RESULTS / ("side_by_side_mnist" if labels == 100 else f"side_by_side_mnist{labels}")


SERIES = {  # key -> (label, side, metrics key)
    "ref_raw": ("reference, raw D", "ref", "test_errors_raw"),
    "ref_avg": ("reference, averaged D (bias-corrected, ganworks' definition)", "ref", "test_errors_avg_corrected"),
    "ref_avg_script": ("reference, averaged D as its script reports it (not bias-corrected)", "ref", "test_errors_avg"),
    "ours_raw": ("ganworks, raw D", "ours", "test_errors"),
    "ours_avg": ("ganworks, averaged D", "ours", "test_errors_ema"),
}
COMPARED = [("raw D", "ref_raw", "ours_raw"), ("averaged D", "ref_avg", "ours_avg")]


def one_thread_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = "1"
    env.update(extra or {})
    return env


def build_mnist_npz(data_root: Path, path: Path) -> Path:
    """The reference's ``mnist.npz`` from the canonical MNIST files: x_train = the first 50,000
    training images, x_valid = the last 10,000, pixels in [0, 1], flattened to 784."""
    if path.exists():
        return path
    from ganworks.data.datasets import load_dataset

    train = load_dataset("mnist", "train", data_root, download=False)
    test = load_dataset("mnist", "test", data_root, download=False)
    x = train.images.reshape(-1, 784).numpy().astype(np.float32) / 255.0
    y = train.labels.numpy().astype(np.int32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        x_train=x[:50000],
        y_train=y[:50000],
        x_valid=x[50000:],
        y_valid=y[50000:],
        x_test=test.images.reshape(-1, 784).numpy().astype(np.float32) / 255.0,
        y_test=test.labels.numpy().astype(np.int32),
    )
    tmp.replace(path)
    return path


def ref_done(log: Path, epochs: int) -> bool:
    return log.exists() and len(read_jsonl(log)) >= epochs


def ours_epochs(run: Path) -> int:
    rows = (
        [r for r in read_jsonl(run / "metrics.jsonl") if "test_errors" in r] if (run / "metrics.jsonl").exists() else []
    )
    return int(max((r["epoch"] for r in rows), default=0))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ref_command(a, seed: int, npz: Path, log: Path) -> list[str]:
    return [
        "nice",
        "-n",
        str(a.nice),
        a.theano_python,
        str(HERE / "ref_mnist_train.py"),
        "--improved-gan",
        a.improved_gan,
        "--lasagne",
        a.lasagne,
        "--mnist-npz",
        str(npz),
        "--epochs",
        str(a.epochs),
        "--log",
        str(log),
        "--",
        "--seed",
        str(seed),
        "--seed_data",
        str(seed),
        "--count",
        str(a.labels // 10),
    ]  # the script's labels per class


def ours_command(a, seed: int, run: Path) -> list[str]:
    base = ["nice", "-n", str(a.nice), sys.executable, "-m", "ganworks"]
    if (run / "config.json").exists():
        return base + ["train", "--resume", str(run), "--epochs", str(a.epochs), "--threads", "1", "--no-progress"]
    return base + [
        "train",
        preset(a.labels),
        "--epochs",
        str(a.epochs),
        "--seed",
        str(seed),
        "--set",
        f"data.seed_data={seed}",
        "--threads",
        "1",
        "--no-progress",
        "--out",
        str(run),
        "--data-root",
        str(a.data_root),
    ]


def worker(name: str, queues: dict, prefer: str, status: dict, lock: threading.Lock) -> None:
    """Runs jobs of its preferred side one after the other; when that side has none left, takes the
    other side's (so a core does not idle while the slower side still has seeds to run)."""
    while True:
        with lock:
            side = prefer if queues[prefer] else next((k for k in queues if queues[k]), None)
            if side is None:
                status[name] = "done"
                return
            seed, cmd, env, stdout, finished = queues[side].pop(0)
        if finished():  # e.g. by another `run` meanwhile
            continue
        status[name] = f"{side} seed {seed} running"
        with open(stdout, "a") as out:
            out.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
            out.flush()
            rc = subprocess.call(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        if rc != 0:
            status[name] = f"{side} seed {seed} failed (exit {rc}, see {stdout})"
            return


def cmd_run(a) -> int:
    work = Path(a.work).expanduser()
    npz = build_mnist_npz(Path(a.data_root), work / "mnist.npz")
    theano_env = one_thread_env(
        {"THEANO_FLAGS": f"device=cpu,floatX=float32,blas.ldflags=,base_compiledir={a.theano_compiledir}"}
    )
    ref_jobs, ours_jobs = [], []
    for s in a.seeds:
        log = work / "reference" / f"seed{s}.jsonl"
        log.parent.mkdir(parents=True, exist_ok=True)
        if not ref_done(log, a.epochs):
            ref_jobs.append(
                (
                    s,
                    ref_command(a, s, npz, log),
                    theano_env,
                    log.with_suffix(".out"),
                    lambda log=log: ref_done(log, a.epochs),
                )
            )
        run = work / "ganworks" / f"seed{s}"
        run.parent.mkdir(parents=True, exist_ok=True)
        if ours_epochs(run) < a.epochs:
            ours_jobs.append(
                (
                    s,
                    ours_command(a, s, run),
                    one_thread_env({"PYTHONPATH": str(HERE.parents[1] / "src")}),
                    run.parent / f"seed{s}.out",
                    lambda run=run: ours_epochs(run) >= a.epochs,
                )
            )
    settings_file = work / "settings.json"  # several `run`s into one --work add up (e.g. a seed run apart)
    old = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    settings_file.write_text(
        json.dumps(
            {
                "seeds": sorted(set(old.get("seeds", [])) | set(a.seeds)),
                "epochs": max(old.get("epochs", 0), a.epochs),
                "preset": preset(a.labels),
                "labels": a.labels,
                "started": old.get("started", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())),
            }
        )
    )
    status, lock = {}, threading.Lock()
    queues = {"reference": ref_jobs, "ganworks": ours_jobs}
    lanes = [
        threading.Thread(
            target=worker, args=(f"worker {i + 1}", queues, ("reference", "ganworks")[i % 2], status, lock)
        )
        for i in range(a.jobs)
    ]
    print(f"side by side: {len(ref_jobs)} reference and {len(ours_jobs)} ganworks runs to do under {work}", flush=True)
    for t in lanes:
        t.start()
    while any(t.is_alive() for t in lanes):
        time.sleep(a.poll)
        done = {
            f"ref{s}": len(read_jsonl(work / "reference" / f"seed{s}.jsonl"))
            if (work / "reference" / f"seed{s}.jsonl").exists()
            else 0
            for s in a.seeds
        }
        done.update({f"ours{s}": ours_epochs(work / "ganworks" / f"seed{s}") for s in a.seeds})
        print(
            time.strftime("%H:%M:%S"),
            status,
            "epochs:",
            done,
            "load",
            [round(x, 2) for x in os.getloadavg()],
            flush=True,
        )
    print(status)
    return 0 if all(v == "done" for v in status.values()) else 1


def collect(work: Path, seeds: list[int], epochs: int, previous: dict | None = None) -> dict:
    """{series key: array [seeds, epochs] (NaN where missing)} and seconds per epoch per side.

    A seed with no logs under ``work`` (neither side) is taken from ``previous``, an earlier results JSON
    of the same comparison that lists it (its per-seed test errors; its seconds are in that JSON, not
    here): the run folders of earlier seeds need not be kept to add seeds later. Such seeds are listed
    in ``previous["_taken"]``."""
    out = {k: np.full((len(seeds), epochs), np.nan) for k in SERIES}
    secs = {"ref": [], "ours": []}
    if previous is not None:
        previous["_taken"] = []
    for i, s in enumerate(seeds):
        has_logs = (work / "reference" / f"seed{s}.jsonl").exists() or (work / "ganworks" / f"seed{s}").exists()
        if not has_logs and previous is not None and s in previous.get("seeds", []):
            j = previous["seeds"].index(s)
            for k in SERIES:
                row = previous["per_epoch"][k]["per_seed"][j][:epochs]
                out[k][i, : len(row)] = [np.nan if x is None else x for x in row]
            previous["_taken"].append(s)
            continue
        ref_log = work / "reference" / f"seed{s}.jsonl"
        for r in read_jsonl(ref_log) if ref_log.exists() else []:
            e = r["epoch"]
            if e <= epochs:
                for k, (_, side, key) in SERIES.items():
                    if side == "ref":
                        out[k][i, e - 1] = r[key]
                secs["ref"].append(r["seconds"])
        mpath = work / "ganworks" / f"seed{s}" / "metrics.jsonl"
        prev = None
        for r in read_jsonl(mpath) if mpath.exists() else []:
            if "test_errors" not in r:
                continue
            e = int(r["epoch"])
            if e <= epochs:
                for k, (_, side, key) in SERIES.items():
                    if side == "ours":
                        out[k][i, e - 1] = r[key]
                if prev is not None and prev[0] == e - 1 and r["wall_time_s"] > prev[1]:
                    secs["ours"].append(r["wall_time_s"] - prev[1])
            prev = (e, r["wall_time_s"])
    return out, secs


def verdicts(series: dict, epochs: int) -> list[dict]:
    rows = []
    for name, rk, ok in COMPARED:
        r, o = series[rk][:, epochs - 1], series[ok][:, epochs - 1]
        r, o = r[~np.isnan(r)], o[~np.isnan(o)]
        if len(r) < 2 or len(o) < 2:
            rows.append({"quantity": name, "verdict": "not enough seeds", "n_ref": len(r), "n_ours": len(o)})
            continue
        sr, so = float(np.std(r, ddof=1)), float(np.std(o, ddof=1))
        pooled = math.sqrt((sr**2 + so**2) / 2)
        diff = float(np.mean(o) - np.mean(r))
        rows.append(
            {
                "quantity": name,
                "epoch": epochs,
                "ref_mean": float(np.mean(r)),
                "ref_std": sr,
                "ours_mean": float(np.mean(o)),
                "ours_std": so,
                "difference": diff,
                "pooled_std": pooled,
                "n_ref": len(r),
                "n_ours": len(o),
                "verdict": "agree" if abs(diff) <= 2 * pooled else "DIFFER",
            }
        )
    return rows


#: power of the comparison: the probability with which a true difference must be detected, and the
#: conventional t-test's level it is also reported for
POWER, ALPHA = 0.8, 0.05


def _detect_probability(crit: float, df: int, ncp: float) -> float:
    """P(|T| > crit) for T ~ noncentral t(df, ncp)."""
    from scipy import stats

    lower = float(stats.nct.cdf(-crit, df, ncp))  # NaN where it underflows (scipy), i.e. ~0
    return float(stats.nct.sf(crit, df, ncp)) + (lower if math.isfinite(lower) else 0.0)


def power_of(row: dict, power: float = POWER, alpha: float = ALPHA) -> dict:
    """The power of one verdict row (``verdicts``): the smallest true difference of the two sides' mean
    test errors that the comparison detects with probability ``power``, under normal seed-to-seed
    spread with the same σ on both sides, σ estimated by the row's pooled std s_p.

    With n_r and n_o seeds, T = (mean_o − mean_r) / (s_p √(1/n_r + 1/n_o)) is a t statistic with
    df = n_r + n_o − 2 (exactly so for equal n, where s_p² = (s_r² + s_o²)/2 is the pooled variance), and
    noncentral with ncp = δ / (σ √(1/n_r + 1/n_o)) when the true difference is δ. The rule |diff| ≤ 2 s_p
    is the test |T| ≤ c with c = 2 / √(1/n_r + 1/n_o): its false-alarm rate (two sides that do not differ
    called DIFFER) is P(|T| > c) under ncp = 0, and its detectable difference the δ at which
    P(|T| > c) = ``power``. The same for a two-sided t-test at ``alpha`` (c = t_{1−α/2, df}).
    """
    from scipy import stats
    from scipy.optimize import brentq

    n_r, n_o, s = row["n_ref"], row["n_ours"], row["pooled_std"]
    df = n_r + n_o - 2
    k = math.sqrt(1 / n_r + 1 / n_o)

    def smallest(crit: float) -> float:
        hi = 1.0
        while _detect_probability(crit, df, hi) < power:
            hi *= 2
        return brentq(lambda ncp: _detect_probability(crit, df, ncp) - power, 0.0, hi, xtol=1e-10) * k * s

    c_rule = 2 / k
    return {
        "power": power,
        "df": df,
        "rule_false_alarm_rate": float(2 * stats.t.sf(c_rule, df)),
        "detectable_difference_rule": smallest(c_rule),
        "t_test_alpha": alpha,
        "detectable_difference_t_test": smallest(float(stats.t.ppf(1 - alpha / 2, df))),
        "assumption": "normal seed-to-seed spread, the same σ on both sides, σ = pooled std; noncentral t",
    }


def plot(series: dict, epochs: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    x = np.arange(1, epochs + 1)
    styles = {
        "ref_raw": ("tab:blue", "-"),
        "ours_raw": ("tab:orange", "-"),
        "ref_avg": ("tab:blue", "-"),
        "ours_avg": ("tab:orange", "-"),
        "ref_avg_script": ("tab:gray", "--"),
    }
    for ax, (title, keys) in zip(
        axes, (("raw D", ["ref_raw", "ours_raw"]), ("averaged D", ["ref_avg", "ours_avg", "ref_avg_script"]))
    ):
        for k in keys:
            m = np.nanmean(series[k], axis=0)
            n = np.sum(~np.isnan(series[k]), axis=0)
            sd = np.where(n > 1, np.nanstd(series[k], axis=0, ddof=1) if series[k].shape[0] > 1 else 0, 0)
            c, ls = styles[k]
            ax.plot(x, m, color=c, ls=ls, label=f"{SERIES[k][0]} (n={int(n.max()) if len(n) else 0})")
            ax.fill_between(x, np.maximum(m - sd, 1), m + sd, color=c, alpha=0.2)
        ax.set_yscale("log")
        ax.set_xlabel("epoch (600 iterations)")
        ax.set_title(f"{title}: test errors of 10,000, mean ± std over seeds")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("test errors")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cmd_report(a) -> int:
    warnings.filterwarnings("ignore", "Mean of empty slice|Degrees of freedom", RuntimeWarning)
    work = Path(a.work).expanduser()
    settings = json.loads((work / "settings.json").read_text()) if (work / "settings.json").exists() else {}
    labels = settings.get("labels", a.labels)
    seeds, epochs = a.seeds or settings.get("seeds", [1, 2, 3]), a.epochs or settings.get("epochs", 30)
    prev_path = Path(a.previous) if a.previous else result_stem(labels).with_suffix(".json")
    previous = json.loads(prev_path.read_text()) if prev_path.exists() else None
    if previous is not None and previous.get("epochs_planned", epochs) < epochs:
        previous = None  # shorter runs cannot fill these epochs
    series, secs = collect(work, seeds, epochs, previous)
    taken = (previous or {}).get("_taken", [])
    reached = {k: [int(np.sum(~np.isnan(v[i]))) for i in range(len(seeds))] for k, v in series.items()}

    # the last epoch at which both sides have at least two seeds (all of them once the runs are done)
    # (with one seed per side: the last epoch both reached; the verdict then says "not enough seeds")
    def common(n_seeds: int) -> int:
        return next(
            (
                e
                for e in range(epochs, 0, -1)
                if min(int(np.sum(~np.isnan(series[k][:, e - 1]))) for k in ("ref_raw", "ours_raw")) >= n_seeds
            ),
            0,
        )

    final = common(2) or common(1)
    checks = verdicts(series, final) if final else []
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = result_stem(labels)
    if final:
        plot(series, epochs, out.with_suffix(".png"))
    per_epoch = {
        k: {
            "mean": np.nanmean(v, 0).round(2).tolist(),
            "std": (np.nanstd(v, 0, ddof=1) if len(seeds) > 1 else 0 * v[0]).round(2).tolist(),
            "per_seed": [[None if math.isnan(x) else int(x) for x in row] for row in v],
        }
        for k, v in series.items()
    }
    per_epoch = json.loads(json.dumps(per_epoch).replace("NaN", "null"))
    sec = {
        side: {"mean": round(float(np.mean(v)), 1), "std": round(float(np.std(v)), 1), "n_epochs": len(v)}
        if v
        else None
        for side, v in secs.items()
    }
    result = {
        "benchmark": f"side-by-side whole training runs, Improved-GAN MNIST {labels} labels (issue 12)",
        "reference": "openai/improved-gan mnist_svhn_cifar10/train_mnist_feature_matching.py via ref_mnist_train.py "
        f"--count {labels // 10} (Theano 1.0.5, floatX=float32, blas.ldflags=, one thread)",
        "labels": labels,
        "ours": f"ganworks train {preset(labels)} --threads 1 (torch {__import__('torch').__version__})",
        "seeds": seeds,
        "epochs_planned": epochs,
        "epochs_reached_per_seed": reached,
        "compared_at_epoch": final,
        "seconds_per_epoch": sec,
        "verdicts": checks,
        "verdict_rule": "at the compared epoch, |mean_ours - mean_ref| <= 2 * sqrt((std_ref^2 + std_ours^2) / 2), "
        "std over seeds (ddof 1)",
        "device": f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores), one thread per side",
        "schedule": a.note or "both sides running at the same time (side_by_side.py run)",
        "load_average_at_report": [round(x, 2) for x in os.getloadavg()],
        **(
            {
                "seeds_from_earlier_report": {
                    "seeds": taken,
                    "written": previous.get("written"),
                    "schedule": previous.get("schedule"),
                    "seconds_per_epoch": previous.get("seconds_per_epoch"),
                }
            }
            if taken
            else {}
        ),
        "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "per_epoch": per_epoch,
    }
    write_report(result, out)
    print(f"wrote {out.with_suffix('.json')}, .md, .png")
    return 0


def write_report(result: dict, out: Path) -> None:
    """Add the power of each verdict (``power_of``) to ``result``, write it as ``out``.json and render
    ``out``.md from it alone (so ``power`` can rewrite the .md of earlier runs without their logs)."""
    for c in result["verdicts"]:
        if "ref_mean" in c:
            c["power"] = power_of(c)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(render_markdown(result, out.name))


def render_markdown(result: dict, name: str) -> str:
    checks, per_epoch, sec = result["verdicts"], result["per_epoch"], result["seconds_per_epoch"]
    labels, seeds, epochs, final = (
        result.get("labels", 100),
        result["seeds"],
        result["epochs_planned"],
        result["compared_at_epoch"],
    )
    title = "" if "labels" not in result else f", {labels} labels"
    lines = [
        f"# Side-by-side whole runs: reference MNIST script vs ganworks{title} (issue 12)",
        "",
        f"Written {result['written']} by `benchmarks/reference_equivalence/side_by_side.py report`"
        + (
            f" (power columns added {result['power_written']} by `side_by_side.py power`, from this JSON)"
            if result.get("power_written")
            else ""
        )
        + ". "
        f"{result['device']}. Seeds {seeds} (seed = seed_data), {epochs} epochs planned; compared at epoch {final}.",
        "",
        f"- reference: {result['reference']}",
        f"- ganworks: {result['ours']}",
    ]
    lines.append(f"- schedule: {result['schedule']}")
    earlier = result.get("seeds_from_earlier_report")
    if earlier:
        sec_e = earlier.get("seconds_per_epoch") or {}
        lines.append(
            f"- seeds {earlier['seeds']}: taken from the report written {earlier['written']} (per-seed test errors "
            f"kept in its JSON; those runs' folders are gone). Their schedule: {earlier['schedule']} Their seconds "
            "per epoch: "
            + ", ".join(
                f"{side} {v['mean']} ± {v['std']} s over {v['n_epochs']} epochs" for side, v in sec_e.items() if v
            )
            + "; the seconds per epoch below are the other seeds' only."
        )
    lines += [
        "",
        "| quantity | reference mean ± std | ganworks mean ± std | difference | 2 × pooled std | n (ref, ours) | verdict "
        f"| rule's false-alarm rate | smallest difference detected {POWER:.0%} of the time: rule; t-test α {ALPHA:g} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        if "ref_mean" in c:
            p = c.get("power")
            rel = lambda d: f"{d:.1f} ({d / c['ref_mean']:.0%} of the reference mean)" if c["ref_mean"] else f"{d:.1f}"  # noqa: E731
            pw = (
                (
                    f"{p['rule_false_alarm_rate']:.2f} | {rel(p['detectable_difference_rule'])}; "
                    f"{rel(p['detectable_difference_t_test'])}"
                )
                if p
                else " | "
            )
            lines.append(
                f"| {c['quantity']} test errors at epoch {c['epoch']} | {c['ref_mean']:.1f} ± {c['ref_std']:.1f} | "
                f"{c['ours_mean']:.1f} ± {c['ours_std']:.1f} | {c['difference']:+.1f} | {2 * c['pooled_std']:.1f} | "
                f"{c['n_ref']}, {c['n_ours']} | {c['verdict']} | {pw} |"
            )
        else:
            lines.append(f"| {c['quantity']} | | | | | {c['n_ref']}, {c['n_ours']} | {c['verdict']} | | |")
    lines += [
        "",
        f"Rule: {result['verdict_rule']}.",
        "",
        f"Power: the smallest true difference of the mean test errors that the comparison would detect "
        f"{POWER:.0%} of the time, with the seeds it has and the seed-to-seed spread it measured (pooled std; "
        "normal spread, the same σ on both sides; noncentral t, `side_by_side.power_of`): first for the rule above, "
        f"then for a two-sided t-test at α = {ALPHA:g}. The rule's false-alarm rate is how often it would call two "
        "sides that do not differ DIFFER. A verdict 'agree' says only that any difference is likely smaller "
        "than the detectable one.",
        "",
        "Seconds per epoch (training + that side's evaluation; the reference's as its script prints it, "
        "ganworks' from metrics.jsonl wall_time_s, which includes its sample grid and checkpoint): "
        + ", ".join(f"{side} {v['mean']} ± {v['std']} s over {v['n_epochs']} epochs" for side, v in sec.items() if v)
        + ".",
        "",
        "Per epoch, mean over seeds (test errors of 10,000):",
        "",
        "| epoch | " + " | ".join(SERIES[k][0] for k in SERIES) + " |",
        "|---|" + "---|" * len(SERIES),
    ]
    for e in range(epochs):
        cells = []
        for k in SERIES:
            m, s = per_epoch[k]["mean"][e], per_epoch[k]["std"][e]
            cells.append("" if m is None else (f"{m:.1f} ± {s:.1f}" if s is not None else f"{m:.1f}"))
        lines.append(f"| {e + 1} | " + " | ".join(cells) + " |")
    lines += ["", f"![side by side]({name}.png)", ""]
    return "\n".join(lines)


def cmd_power(a) -> int:
    """Add the power columns to every side-by-side results file there is and rewrite its .md from the JSON."""
    done = 0
    for labels in LABELS:
        out = result_stem(labels)
        if not out.with_suffix(".json").exists():
            continue
        result = json.loads(out.with_suffix(".json").read_text())
        result["power_written"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        write_report(result, out)
        for c in result["verdicts"]:
            if "power" in c:
                p = c["power"]
                print(
                    f"{out.name}: {c['quantity']}: {c['verdict']}, difference {c['difference']:+.1f}; detectable "
                    f"{p['detectable_difference_rule']:.1f} (rule, false-alarm rate {p['rule_false_alarm_rate']:.2f}), "
                    f"{p['detectable_difference_t_test']:.1f} (t-test α {p['t_test_alpha']:g})"
                )
        done += 1
    print(f"rewrote {done} results file(s) under {RESULTS}")
    return 0 if done else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "report", "power"])
    ap.add_argument("--seeds", type=int, nargs="+")
    ap.add_argument("--epochs", type=int)
    ap.add_argument(
        "--labels",
        type=int,
        choices=LABELS,
        default=100,
        help="labelled examples (Table 1's rows; the reference's --count is labels/10); report: "
        "read from the work folder's settings.json when there",
    )
    ap.add_argument("--work", default=str(HOME / "side_by_side"))
    ap.add_argument("--data-root", default=os.environ.get("GANWORKS_DATA", "/work/shared/data"))
    ap.add_argument("--improved-gan", default=str(HOME / "refsrc/improved-gan"))
    ap.add_argument("--lasagne", default=str(HOME / "refsrc/Lasagne"))
    ap.add_argument("--theano-python", default=str(HOME / "refenv/theano/bin/python"))
    ap.add_argument("--theano-compiledir", default=str(HOME / "refenv/theano-compiledir"))
    ap.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each (2: one per side)")
    ap.add_argument("--nice", type=int, default=5)
    ap.add_argument("--poll", type=float, default=60.0, help="seconds between progress lines")
    ap.add_argument("--note", help="report: how the runs were scheduled / what else loaded the machine")
    ap.add_argument(
        "--previous",
        help="report: an earlier results JSON whose seeds fill those with no logs under --work "
        "(default: the results file this report replaces)",
    )
    a = ap.parse_args(argv)
    if a.command == "run":
        a.seeds, a.epochs = a.seeds or [1, 2, 3], a.epochs or 30
        return cmd_run(a)
    if a.command == "power":
        return cmd_power(a)
    return cmd_report(a)


if __name__ == "__main__":
    raise SystemExit(main())
