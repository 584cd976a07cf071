"""Loader for the clustering benchmark suite in ../shared/data/clustering-benchmarks.

Each dataset is BATTERY/NAME.data.gz (points) with one or more NAME.labelsN.gz reference
partitions (label 0 marks noise). Points are preprocessed as the suite's published results
were: constant columns dropped, centred, and divided by one common standard deviation
(the suite also adds tiny noise to break ties; that step is left out here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The benchmark data sits beside the checkout (../shared/data); SOFTCLUST_BENCH_DATA overrides.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SUITE = Path(os.environ.get("SOFTCLUST_BENCH_DATA", SHARED_DATA / "clustering-benchmarks"))
BATTERIES = ("wut", "fcps", "sipu", "graves", "other", "uci")


@dataclass
class Dataset:
    battery: str
    name: str
    X: np.ndarray  # (n, d) float64, preprocessed
    labellings: list[np.ndarray]  # each (n,), 0 = noise, 1..k

    @property
    def key(self) -> str:
        return f"{self.battery}/{self.name}"

    def ks(self) -> list[int]:
        return [len(np.unique(y[y > 0])) for y in self.labellings]


def dataset_names(root: Path = SUITE) -> list[tuple[str, str]]:
    """(battery, name) of every dataset in the suite, sorted."""
    found = []
    for battery in BATTERIES:
        for path in sorted((root / battery).glob("*.data.gz")):
            found.append((battery, path.name[: -len(".data.gz")]))
    return found


def load(battery: str, name: str, root: Path = SUITE) -> Dataset:
    folder = root / battery
    X = np.loadtxt(folder / f"{name}.data.gz", ndmin=2)
    labellings = [
        np.loadtxt(p, dtype=np.int64) for p in sorted(folder.glob(f"{name}.labels*.gz"))
    ]
    return Dataset(battery, name, preprocess(X), labellings)


def preprocess(X: np.ndarray) -> np.ndarray:
    X = X[:, X.std(axis=0) > 0]
    X = X - X.mean(axis=0)
    return X / X.std()


def digits() -> Dataset:
    from sklearn.datasets import load_digits

    data = load_digits()
    return Dataset("sklearn", "digits", data.data.astype(np.float64), [data.target + 1])
