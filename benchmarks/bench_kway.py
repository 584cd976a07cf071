"""K clusters at once: the softmax refinement against the greedy tree and k-means.

On every dataset of the clustering benchmark suite (../shared/data/clustering-benchmarks)
and scikit-learn's digits, at the true K of each reference labelling, side by side in one
run:
- greedy: HypersurfaceClustering(K), compact criterion, linear splits (the paper's tree);
- softmax: SoftmaxClustering(K), the same kind of tree refined by one K-output softmax
  surface on the softened sum of squares of all clusters together (linear and MLP);
- kmeans: scikit-learn's KMeans (k-means++, 10 starts), the reference for the sum of
  squares; bisecting: scikit-learn's BisectingKMeans, the other greedy tree.
Per method: the mean ARI (noise points left out, best labelling kept), the mean sum of
squares relative to k-means (1.00 = as low as k-means), the share of fits whose sum of
squares is at most k-means's (+0.1 %), and the wall time. Datasets over ``--cap`` points
are subsampled.

    .venv/bin/python benchmarks/bench_kway.py [--quick] [--cap 10000]

CSV files go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _datasets import Dataset, dataset_names, digits, load

RESULTS = Path(__file__).resolve().parent / "results"
QUICK = ["wut/x2", "fcps/atom", "fcps/lsun", "sipu/s1", "graves/ring", "uci/wine"]


def greedy(X, k):
    from softclust_gui.engine import HypersurfaceClustering

    model = HypersurfaceClustering(k, device="cpu", random_state=0)
    return model.fit_predict(X)


def softmax(surface):
    def run(X, k):
        from softclust_gui.engine import SoftmaxClustering

        model = SoftmaxClustering(k, surface=surface, device="cpu", random_state=0)
        return model.fit_predict(X)

    return run


def kmeans(X, k):
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=0).fit_predict(X)


def bisecting(X, k):
    from sklearn.cluster import BisectingKMeans

    return BisectingKMeans(k, random_state=0).fit_predict(X)


METHODS = {
    "greedy": greedy,
    "softmax_linear": softmax("linear"),
    "softmax_mlp": softmax("mlp"),
    "kmeans": kmeans,
    "bisecting_kmeans": bisecting,
}


def sum_of_squares(X, labels) -> float:
    total = 0.0
    for j in np.unique(labels):
        members = X[labels == j]
        total += float(((members - members.mean(axis=0)) ** 2).sum())
    return total


def subsample(dataset: Dataset, cap: int) -> Dataset:
    if len(dataset.X) <= cap:
        return dataset
    rows = np.sort(np.random.default_rng(0).choice(len(dataset.X), cap, replace=False))
    return Dataset(
        dataset.battery, dataset.name, dataset.X[rows], [y[rows] for y in dataset.labellings]
    )


def run_dataset(dataset: Dataset) -> list[dict]:
    """One row per (true K, method): ARI against the labellings of that K, SSE, time."""
    rows = []
    for k in sorted(set(dataset.ks())):
        if k < 2 or k >= len(dataset.X):
            continue
        references = [y for y in dataset.labellings if len(np.unique(y[y > 0])) == k]
        for method, fit in METHODS.items():
            began = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                labels = np.asarray(fit(dataset.X, k))
            seconds = time.perf_counter() - began
            ari = max(adjusted_rand_score(y[y > 0], labels[y > 0]) for y in references)
            rows.append(
                dict(
                    dataset=dataset.key,
                    n=len(dataset.X),
                    k=k,
                    method=method,
                    ari=round(ari, 4),
                    sse=sum_of_squares(dataset.X, labels),
                    seconds=round(seconds, 3),
                )
            )
    return rows


def summary(rows) -> list[dict]:
    reference = {(r["dataset"], r["k"]): r["sse"] for r in rows if r["method"] == "kmeans"}
    print(
        f"\n{'method':18s} {'mean ARI':>9s} {'SSE / k-means':>14s} {'SSE <= k-means':>15s}"
        f" {'time s':>8s}"
    )
    table = []
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        ratios = [r["sse"] / reference[(r["dataset"], r["k"])] for r in mine]
        entry = dict(
            method=method,
            mean_ari=float(np.mean([r["ari"] for r in mine])),
            mean_sse_ratio=float(np.mean(ratios)),
            share_sse_at_most_kmeans=float(np.mean([q <= 1.001 for q in ratios])),
            seconds=float(sum(r["seconds"] for r in mine)),
        )
        table.append(entry)
        print(
            f"{method:18s} {entry['mean_ari']:9.3f} {entry['mean_sse_ratio']:14.3f}"
            f" {entry['share_sse_at_most_kmeans']:15.2f} {entry['seconds']:8.1f}"
        )
    return table


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="six datasets")
    parser.add_argument("--cap", type=int, default=10_000, help="subsample bigger datasets")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)

    keys = (
        QUICK if args.quick else [f"{b}/{n}" for b, n in dataset_names()] + ["sklearn/digits"]
    )
    print(f"{len(keys)} datasets at their true K, size cap {args.cap:,} points")
    rows = []
    for key in keys:
        dataset = digits() if key == "sklearn/digits" else load(*key.split("/"))
        found = run_dataset(subsample(dataset, args.cap))
        rows.extend(found)
        cells = "  ".join(f"{r['method']}={r['ari']:.2f}" for r in found[-len(METHODS) :])
        print(f"{key:28s} {cells}", flush=True)
    table = summary(rows)
    suffix = "_quick" if args.quick else ""
    write_csv(RESULTS / f"kway{suffix}.csv", rows)
    write_csv(RESULTS / f"kway_summary{suffix}.csv", table)


if __name__ == "__main__":
    main()
