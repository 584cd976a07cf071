"""Automatic number of clusters: hypersurface clustering against X-means, G-means, HDBSCAN
and Genie, side by side in one run.

Table 1: every dataset of the clustering benchmark suite (../shared/data/clustering-benchmarks)
and scikit-learn's digits. Per method: the share of datasets where the found K equals the
true K of some reference labelling, the mean |found K - true K| (nearest labelling), the
mean adjusted Rand index at the found K (noise points left out, best labelling kept), and
the total wall time. Datasets over ``--cap`` points are subsampled (stated in the output).
Table 2: real photos as the app sees them: UC Merced land-use aerial photos (400 images,
8 classes) and COIL-20 objects (1,440 images, 20 classes), MobileNet V1 int8 embeddings
(the imaging layer's LiteRT extractor) L2-normalised and reduced by PCA as the app does
(imaging.reduce_features): found K and ARI.

Every method gets the same upper bound ``--max-k`` and parameters fixed for all datasets:
- hc_auto: HypersurfaceClustering(n_clusters="auto"), compact criterion, linear surface
  (the app's "Similar look"); hc_auto_connected: the connected criterion with MLP
  surfaces (the app's "Connected shapes"), many times slower.
- xmeans: pyclustering X-means (BIC), k-means++ start with 2 centres, kmax = max-k.
- gmeans: pyclustering G-means (Anderson-Darling), k_init 1, k_max = max-k.
- hdbscan: scikit-learn HDBSCAN with its defaults (noise is one more cluster for the ARI,
  and not counted in the found K).
- genie_dunnowa, genie_calinski: genieclust has no automatic K of its own; Genie (g = 0.3)
  cut at the K in 2..max-k that maximises a validity index of genieclust.cluster_validity:
  the generalised Dunn index DuNN-OWA (its defaults), or the Calinski-Harabasz index.

Run from the repository root (needs the ``bench`` extra: pip install -e '.[bench]'):
    .venv/bin/python benchmarks/bench_auto_k.py            # the whole suite + images
    .venv/bin/python benchmarks/bench_auto_k.py --quick    # six datasets, no images
    .venv/bin/python benchmarks/bench_auto_k.py --images-only --methods hc_auto hdbscan
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
from _datasets import SHARED_DATA, Dataset, dataset_names, digits, load

RESULTS = Path(__file__).resolve().parent / "results"
IMAGES = SHARED_DATA / "images"
IMAGE_SETS = ("ucmerced-landuse", "coil20-32px")
WEIGHTS = SHARED_DATA / "weights" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
QUICK = ["wut/x2", "fcps/atom", "fcps/lsun", "sipu/s1", "graves/ring", "uci/wine"]


# -- methods: each maps (X, max_k) to labels (noise as -1) ------------------------------


def hc_auto(criterion, surface):
    def run(X, max_k):
        from softclust_gui.engine import HypersurfaceClustering

        model = HypersurfaceClustering(
            "auto",
            max_clusters=max_k,
            criterion=criterion,
            surface=surface,
            device="cpu",
            random_state=0,
        )
        return model.fit_predict(X)

    return run


def xmeans(X, max_k):
    from pyclustering.cluster import xmeans as pyclustering_xmeans
    from sklearn.cluster import kmeans_plusplus

    # pyclustering's own k-means++ fails on numpy 2; scikit-learn's gives the same seeds.
    start, _ = kmeans_plusplus(X, 2, random_state=0)
    model = pyclustering_xmeans.xmeans(
        X, start.tolist(), kmax=max_k, ccore=True, random_state=0
    )
    model.process()
    return _from_clusters(model.get_clusters(), len(X))


def gmeans(X, max_k):
    from pyclustering.cluster import gmeans as pyclustering_gmeans

    model = pyclustering_gmeans.gmeans(X, k_init=1, ccore=True, k_max=max_k, random_state=0)
    model.process()
    return _from_clusters(model.get_clusters(), len(X))


def hdbscan(X, max_k):
    from sklearn.cluster import HDBSCAN

    return HDBSCAN().fit_predict(X)


def genie_auto(index_name):
    """Genie (g = 0.3) cut at the K in 2..max_k that a cluster validity index prefers."""

    def run(X, max_k):
        import genieclust
        from genieclust import cluster_validity

        index = getattr(cluster_validity, index_name)
        model = genieclust.Genie(n_clusters=max_k, coarser=True, verbose=False).fit(X)
        best, best_labels = -np.inf, None
        for labels in model.labels_matrix_[1:]:  # row i is the (i + 1)-partition
            labels = np.asarray(labels, dtype=np.int64)
            if len(np.unique(labels)) < 2:
                continue
            score = index(X, labels)
            score = score if np.isfinite(score) else -np.inf  # an index can be undefined
            if best_labels is None or score > best:
                best, best_labels = score, labels
        return best_labels if best_labels is not None else np.zeros(len(X), dtype=np.int64)

    return run


def _from_clusters(clusters, n):
    labels = np.full(n, -1, dtype=np.int64)
    for j, members in enumerate(clusters):
        labels[np.asarray(members, dtype=np.int64)] = j
    return labels


METHODS = {
    "hc_auto": hc_auto("compact", "linear"),
    "hc_auto_connected": hc_auto("connected", "mlp"),
    "xmeans": xmeans,
    "gmeans": gmeans,
    "hdbscan": hdbscan,
    "genie_dunnowa": genie_auto("dunnowa_index"),
    "genie_calinski": genie_auto("calinski_harabasz_index"),
}


# -- scoring ----------------------------------------------------------------------------


def found_k(labels) -> int:
    return len(np.unique(labels[labels >= 0]))


def score(dataset: Dataset, labels) -> tuple[int, bool, int, float]:
    """(found K, K equals a reference K, min |found - true|, best ARI over labellings)."""
    k = found_k(labels)
    ks = dataset.ks()
    aris = []
    for y in dataset.labellings:
        keep = y > 0
        aris.append(adjusted_rand_score(y[keep], labels[keep]))
    return k, k in ks, min(abs(k - t) for t in ks), max(aris)


def subsample(dataset: Dataset, cap: int) -> tuple[Dataset, str]:
    n = len(dataset.X)
    if n <= cap:
        return dataset, ""
    rows = np.sort(np.random.default_rng(0).choice(n, cap, replace=False))
    small = Dataset(
        dataset.battery, dataset.name, dataset.X[rows], [y[rows] for y in dataset.labellings]
    )
    return small, f"{dataset.key}: {n:,} -> {cap:,} points"


def timed_fit(fit, X, max_k):
    """(labels, wall seconds) of one method's fit, its warnings silenced."""
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = fit(X, max_k)
    return labels, time.perf_counter() - began


def run_suite(keys, max_k, cap):
    rows, notes = [], []
    for key in keys:
        dataset = digits() if key == "sklearn/digits" else load(*key.split("/"))
        dataset, note = subsample(dataset, cap)
        if note:
            notes.append(note)
        for method, fit in METHODS.items():
            labels, seconds = timed_fit(fit, dataset.X, max_k)
            k, hit, gap, ari = score(dataset, labels)
            rows.append(
                dict(
                    dataset=key,
                    method=method,
                    n=len(dataset.X),
                    true_k="/".join(str(t) for t in sorted(set(dataset.ks()))),
                    found_k=k,
                    hit=int(hit),
                    k_error=gap,
                    ari=round(ari, 4),
                    seconds=round(seconds, 3),
                )
            )
        line = "  ".join(f"{r['method']}={r['found_k']}" for r in rows[-len(METHODS) :])
        print(f"{key:28s} true {rows[-1]['true_k']:>6s}  {line}", flush=True)
    return rows, notes


def summary(rows):
    print()
    print(f"{'method':20s} {'K right':>8s} {'mean |dK|':>10s} {'mean ARI':>9s} {'time s':>8s}")
    table = []
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        entry = dict(
            method=method,
            share_k_right=np.mean([r["hit"] for r in mine]),
            mean_k_error=np.mean([r["k_error"] for r in mine]),
            mean_ari=np.mean([r["ari"] for r in mine]),
            seconds=sum(r["seconds"] for r in mine),
        )
        table.append(entry)
        print(
            f"{method:20s} {entry['share_k_right']:8.2f} {entry['mean_k_error']:10.2f} "
            f"{entry['mean_ari']:9.3f} {entry['seconds']:8.1f}"
        )
    return table


# -- image features ---------------------------------------------------------------------


def image_features(name: str):
    """Embeddings of one labelled image set (raw, cached) and its class labels 1..K."""
    cache = RESULTS / f"{name}_litert.npz"
    if cache.is_file():
        stored = np.load(cache)
        return stored["X"], stored["y"]
    from softclust_gui.imaging.decode import decode_image
    from softclust_gui.imaging.extractors import LiteRTExtractor

    extractor = LiteRTExtractor(WEIGHTS)
    folder = IMAGES / name
    with open(folder / "labels.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    classes = sorted({row["label"] for row in table})
    X = []
    for start in range(0, len(table), 64):
        batch = table[start : start + 64]
        pixels = np.stack(
            [
                decode_image(folder / row["path"], "png", extractor.preprocess).pixels
                for row in batch
            ]
        )
        X.append(extractor.embed(pixels).astype(np.float32))
    X = np.concatenate(X)
    y = np.array([classes.index(row["label"]) + 1 for row in table])
    np.savez(cache, X=X, y=y)
    return X, y


def run_images(max_k):
    from softclust_gui.imaging.reduce import reduce_features

    rows = []
    for name in IMAGE_SETS:
        raw, y = image_features(name)
        X = reduce_features(raw).astype(np.float64)  # what the app clusters
        dataset = Dataset("images", name, X, [y])
        print(
            f"\n{name}: {len(X)} images, MobileNet V1 int8 embeddings ({raw.shape[1]}-d) "
            f"L2-normalised and reduced by PCA to {X.shape[1]} as in the app, "
            f"true K {dataset.ks()[0]}"
        )
        print(f"{'method':20s} {'found K':>8s} {'ARI':>7s} {'time s':>8s}")
        for method, fit in METHODS.items():
            labels, seconds = timed_fit(fit, X, max_k)
            k, _, _, ari = score(dataset, labels)
            rows.append(
                dict(
                    images=name,
                    method=method,
                    found_k=k,
                    ari=round(ari, 4),
                    seconds=round(seconds, 3),
                )
            )
            print(f"{method:20s} {k:8d} {ari:7.3f} {seconds:8.1f}", flush=True)
    return rows


def write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="six datasets, no images")
    parser.add_argument("--max-k", type=int, default=100, help="upper bound on K, all methods")
    parser.add_argument("--cap", type=int, default=10_000, help="subsample bigger datasets")
    parser.add_argument("--no-images", action="store_true")
    parser.add_argument("--images-only", action="store_true", help="skip the suite")
    parser.add_argument(
        "--methods", nargs="+", choices=list(METHODS), help="run only these methods"
    )
    parser.add_argument("--datasets", nargs="+", help="run only these keys (battery/name)")
    args = parser.parse_args()
    if args.methods:
        for name in list(METHODS):
            if name not in args.methods:
                del METHODS[name]
    RESULTS.mkdir(exist_ok=True)
    suffix = "_partial" if args.methods or args.datasets else ""
    if not args.images_only:
        keys = (
            QUICK
            if args.quick
            else [f"{b}/{n}" for b, n in dataset_names()] + ["sklearn/digits"]
        )
        suffix = "_quick" if args.quick else suffix
        run_and_write_suite(args.datasets or keys, args, suffix)
    if not (args.quick or args.no_images):
        write_csv(RESULTS / f"auto_k_images{suffix}.csv", run_images(args.max_k))


def run_and_write_suite(keys, args, suffix):
    print(f"{len(keys)} datasets, K bound {args.max_k}, size cap {args.cap:,} points")
    rows, notes = run_suite(keys, args.max_k, args.cap)
    table = summary(rows)
    if notes:
        print("subsampled: " + "; ".join(notes))
    write_csv(RESULTS / f"auto_k{suffix}.csv", rows)
    write_csv(RESULTS / f"auto_k_summary{suffix}.csv", table)


if __name__ == "__main__":
    main()
