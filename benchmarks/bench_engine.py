"""Hypersurface clustering against scikit-learn's clusterers and Genie, side by side.

Table 1 (quality): adjusted Rand index on every dataset of the clustering benchmark suite
(../shared/data/clustering-benchmarks) and on scikit-learn's digits, at the true k of each
reference labelling, noise points left out, best labelling kept; means per battery and
overall; wall time per method.
Table 2 (speed): n = 100,000 and 1,000,000 Gaussian blobs, d = 64, K = 10: best time of
three fits, extra peak memory during the fit and sum of squares of compact/linear against
BisectingKMeans and KMeans.

Run from the repository root:
    .venv/bin/python benchmarks/bench_engine.py            # both tables
    .venv/bin/python benchmarks/bench_engine.py --quick    # a few small datasets, n=100k
CSV files go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import Dataset, dataset_names, digits, load

RESULTS = Path(__file__).resolve().parent / "results"
QUICK = ["wut/x2", "fcps/atom", "fcps/lsun", "sipu/spiral", "graves/ring", "uci/wine"]


def engine(criterion, surface):
    def run(X, k):
        from softclust_gui.engine import HypersurfaceClustering

        model = HypersurfaceClustering(
            k, criterion=criterion, surface=surface, device="cpu", random_state=0
        )
        return model.fit_predict(X)

    return run


def sklearn_method(name):
    def run(X, k):
        from sklearn import cluster

        if name == "kmeans":
            model = cluster.KMeans(k, n_init=10, random_state=0)
        elif name == "bisecting":
            model = cluster.BisectingKMeans(k, random_state=0)
        elif name == "spectral":
            model = cluster.SpectralClustering(k, affinity="nearest_neighbors", random_state=0)
        elif name == "ward":
            model = cluster.AgglomerativeClustering(k, linkage="ward")
        else:  # HDBSCAN chooses its own number of clusters; noise (-1) is one more
            model = cluster.HDBSCAN()
        return model.fit_predict(X)

    return run


def genie(X, k):
    import genieclust

    return genieclust.Genie(n_clusters=k, verbose=False).fit_predict(X)


METHODS = {
    "hc_compact_linear": engine("compact", "linear"),
    "hc_compact_mlp": engine("compact", "mlp"),
    "hc_connected_mlp": engine("connected", "mlp"),
    "kmeans": sklearn_method("kmeans"),
    "bisecting_kmeans": sklearn_method("bisecting"),
    "spectral_knn": sklearn_method("spectral"),
    "ward": sklearn_method("ward"),
    "hdbscan": sklearn_method("hdbscan"),
    "genie": genie,
}


def subsample(data: Dataset, max_n: int) -> Dataset:
    if len(data.X) <= max_n:
        return data
    rows = np.sort(np.random.RandomState(0).choice(len(data.X), max_n, replace=False))
    return Dataset(data.battery, data.name, data.X[rows], [y[rows] for y in data.labellings])


def score(data: Dataset, method) -> tuple[float, float]:
    """Best ARI over the reference labellings, and the seconds all the fits took."""
    from sklearn.metrics import adjusted_rand_score

    best, seconds, by_k = -1.0, 0.0, {}
    for y, k in zip(data.labellings, data.ks(), strict=True):
        if k not in by_k:
            start = time.perf_counter()
            by_k[k] = np.asarray(method(data.X, k))
            seconds += time.perf_counter() - start
        keep = y > 0
        best = max(best, adjusted_rand_score(y[keep], by_k[k][keep]))
    return best, seconds


def quality_table(names, methods, max_n):
    RESULTS.mkdir(exist_ok=True)
    rows = []
    path = RESULTS / "quality.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["battery", "dataset", "n", "method", "ARI", "seconds"])
        for battery, name in names:
            data = digits() if battery == "sklearn" else subsample(load(battery, name), max_n)
            line = [f"{data.key:28s} {len(data.X):6d}"]
            for method in methods:
                ari, seconds = score(data, METHODS[method])
                rows.append((battery, name, method, ari, seconds))
                writer.writerow(
                    [battery, name, len(data.X), method, f"{ari:.4f}", f"{seconds:.3f}"]
                )
                line.append(f"{ari:6.3f}")
            handle.flush()
            print(" ".join(line), flush=True)
    return rows


def summarise(rows, methods):
    suite = [r for r in rows if r[0] != "sklearn"]
    batteries = sorted({r[0] for r in suite})
    print("\nMean ARI (suite datasets only in 'all suite'; digits shown apart)")
    print(f"{'battery':12s} " + " ".join(f"{m[:16]:>16s}" for m in methods))
    for group in [*batteries, "all suite", "sklearn", "time (s)"]:
        cells = []
        for method in methods:
            if group == "time (s)":
                vals = [r[4] for r in rows if r[2] == method]
                cells.append(f"{sum(vals):16.1f}")
                continue
            pick = suite if group == "all suite" else [r for r in rows if r[0] == group]
            vals = [r[3] for r in pick if r[2] == method]
            cells.append(f"{np.mean(vals):16.3f}" if vals else f"{'-':>16s}")
        print(f"{group:12s} " + " ".join(cells))


# Table 2: speed and memory, one subprocess per fit so peak memory is its own.


def blobs(n, d=64, k=10, seed=0, chunk=100_000):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4.0, (k, d)).astype(np.float32)
    X = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        which = rng.integers(0, k, stop - start)
        X[start:stop] = centres[which] + rng.standard_normal((stop - start, d), np.float32)
    return X


def sum_of_squares(X, labels):
    total = 0.0
    for j in np.unique(labels):
        part = X[labels == j].astype(np.float64)
        total += float(((part - part.mean(0)) ** 2).sum())
    return total


def _reset_peak_rss() -> bool:
    """Start this process's peak-RSS count afresh (Linux); False where that is not possible,
    and the peak then counts from the process's start (imports and data included)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    """Peak resident memory since the last reset, in bytes (Linux's VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def _speed_child(method, n):
    """One fit in this process: prints seconds, extra peak memory and SSE as JSON.

    Libraries are imported and warmed up before the clock and the memory baseline start,
    so the figures are those of the fit itself.
    """
    import psutil
    from sklearn import cluster

    from softclust_gui.engine import HypersurfaceClustering

    if method == "hc_compact_linear":
        model = HypersurfaceClustering(10, device="cpu", random_state=0)
        HypersurfaceClustering(2, device="cpu", max_epochs=1).fit(blobs(1000, seed=1))  # warm
    elif method == "kmeans":
        model = cluster.KMeans(10, random_state=0)
    else:
        model = cluster.BisectingKMeans(10, random_state=0)
    X = blobs(n)
    exact = _reset_peak_rss()
    before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    labels = model.fit_predict(X)
    seconds = time.perf_counter() - start
    peak = _peak_rss() if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "extra_peak_mb": max(0, peak - before) / 2**20,
                "data_mb": X.nbytes / 2**20,
                "sse": sum_of_squares(X, labels),
            }
        )
    )


def _speed_run(method: str, n: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--speed-child", method, str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def speed_table(sizes, repeats=3):
    RESULTS.mkdir(exist_ok=True)
    methods = ["hc_compact_linear", "bisecting_kmeans", "kmeans"]
    out = []
    print(
        f"\n{'n':>9s} {'method':18s} {'seconds':>8s} {'extra peak MB':>13s} "
        f"{'data MB':>8s} {'SSE':>14s} {'time/bisect':>11s} {'SSE/bisect':>10s}"
    )
    for n in sizes:
        results = {}
        for method in methods:
            # Best of a few fits, each in its own process: other processes on shared
            # cores only ever slow a fit down, and sub-second times vary most.
            runs = [_speed_run(method, n) for _ in range(repeats)]
            results[method] = min(runs, key=lambda r: r["seconds"])
        base = results["bisecting_kmeans"]
        for method in methods:
            r = results[method]
            out.append({"n": n, "method": method, **r})
            print(
                f"{n:9d} {method:18s} {r['seconds']:8.2f} {r['extra_peak_mb']:13.0f} "
                f"{r['data_mb']:8.0f} {r['sse']:14.6g} "
                f"{r['seconds'] / base['seconds']:11.2f} {r['sse'] / base['sse']:10.4f}",
                flush=True,
            )
    with (RESULTS / "speed.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(out[0]))
        writer.writeheader()
        writer.writerows(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few small datasets")
    parser.add_argument("--datasets", nargs="*", help="BATTERY/NAME ... (default: all)")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--max-n",
        type=int,
        default=20_000,
        help="larger datasets are subsampled (seed 0) for every method",
    )
    parser.add_argument("--sizes", nargs="*", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--speed-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.speed_child:
        _speed_child(args.speed_child[0], int(args.speed_child[1]))
        return
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    if not args.no_quality:
        names = [tuple(s.split("/")) for s in (QUICK if args.quick else args.datasets or [])]
        names = names or dataset_names()
        names = [*names, ("sklearn", "digits")]
        print(
            f"Datasets over {args.max_n:,} points are subsampled to {args.max_n:,} "
            "(seed 0) for every method. HDBSCAN picks its own number of clusters."
        )
        print(f"{'dataset':28s} {'n':>6s} " + " ".join(f"{m[:6]:>6s}" for m in args.methods))
        rows = quality_table(names, args.methods, args.max_n)
        summarise(rows, args.methods)
    if not args.no_speed:
        speed_table([100_000] if args.quick else args.sizes)


if __name__ == "__main__":
    main()
