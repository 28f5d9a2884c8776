"""Leave-one-category-out validation of the composite detector's few tuned settings on NAB.

    python benchmarks/nab_loco.py [--nab ../shared/nab]

A small grid over the four tuned settings of :class:`detectors.composite.CompositeConfig`
(``ctx_gate`` x ``ctx_weight`` x ``record_margin`` x ``record_memory``, everything else fixed at
:data:`~detectors.composite.DEFAULTS`) is scored on the development files. For each of the
7 categories, the setting *and the threshold* are chosen on the other 6 categories (standard
profile, best threshold) and the 7th is scored with them: that is the held-out figure.

Printed: per category the chosen setting, threshold and held-out normalised score (raw score for
categories without windows), the pooled LOCO score (the 7 held-out raw scores summed and
normalised over all files), the setting most often chosen with the median of its fold
thresholds (what to ship), and the shipped DEFAULTS' dev scores at the best and the default
threshold. Labels are read only here, by the scorer, never by the detector.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.nab import load_corpus, run_detector
from detectors.composite import DEFAULT_THRESHOLD, DEFAULTS

GRID: dict[str, tuple[float, ...]] = {
    "ctx_gate": (0.0, 1.5, 1.75, 2.0),
    "ctx_weight": (0.0, 0.2, 0.3, 0.4),
    "record_margin": (0.1, 0.2, 0.3),
    "record_memory": (2.0, 4.0, 8.0),
}
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


class Scorer:
    """In-process NAB scoring of score arrays, through ../shared/nab/nabscore.py."""

    def __init__(self, nab: Path) -> None:
        sys.path.insert(0, str(nab))
        import nabscore  # the shared, independent scorer

        self.ns: ModuleType = nabscore
        windows = json.loads((nab / "labels" / "combined_windows.json").read_text())
        self.profiles = json.loads((nab / "config" / "profiles.json").read_text())
        geos = nabscore.load_geometries(str(nab / "data"), windows, nabscore.PROBATION_FRACTION)
        self.geo = {g.rel_path: g for g in geos}

    def _pool(self, scores: dict[str, np.ndarray], files: list[str]) -> Any:
        return self.ns.Pool([self.geo[f] for f in files], {f: scores[f] for f in files})

    def _norm(self, raw: float, files: list[str], cost: dict[str, float]) -> float:
        null = self._pool({f: np.full(self.geo[f].n, 0.5) for f in files}, files)
        _, null_raw = null.optimise(cost)
        perfect = cost["tpWeight"] * null.n_windows
        return 100.0 * (raw - null_raw) / (perfect - null_raw) if perfect != null_raw else raw

    def best(
        self, scores: dict[str, np.ndarray], files: list[str], profile: str = "standard"
    ) -> tuple[float, float, float]:
        """(threshold, raw, normalised) at the best threshold."""
        cost = self.profiles[profile]["CostMatrix"]
        thr, raw = self._pool(scores, files).optimise(cost)
        return thr, raw, self._norm(raw, files, cost)

    def at(
        self, scores: dict[str, np.ndarray], files: list[str], threshold: float, profile: str = "standard"
    ) -> tuple[float, float]:
        """(raw, normalised) at a fixed threshold."""
        cost = self.profiles[profile]["CostMatrix"]
        raw, _ = self._pool(scores, files).score_at(cost, threshold)
        return raw, self._norm(raw, files, cost)


def loco(
    scorer: Scorer, runs: list[dict[str, np.ndarray]], names: list[str], categories: list[str]
) -> tuple[float, list[tuple[int, float, float]]]:
    """Pooled held-out score and per category (chosen run, threshold, held-out normalised score)."""
    total_raw, folds = 0.0, []
    for cat in categories:
        train = [n for n in names if not n.startswith(cat + "/")]
        test = [n for n in names if n.startswith(cat + "/")]
        fits = [scorer.best(run, train) for run in runs]
        k = max(range(len(runs)), key=lambda i: (fits[i][1], -i))
        thr = fits[k][0]
        raw, norm = scorer.at(runs[k], test, thr)
        total_raw += raw
        folds.append((k, thr, norm))
    return scorer._norm(total_raw, names, scorer.profiles["standard"]["CostMatrix"]), folds


def main(argv: list[str] | None = None) -> int:
    """Run the grid, the 7 folds, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_nab = Path(__file__).resolve().parent.parent.parent / "shared" / "nab"
    ap.add_argument("--nab", type=Path, default=default_nab, help="NAB dev folder")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument("--grid", type=json.loads, default=GRID, help='JSON {"setting": [values], ...}')
    args = ap.parse_args(argv)
    grid: dict[str, list[Any]] = args.grid
    scorer = Scorer(args.nab)
    files = load_corpus(args.nab / "data")
    names = [str(f.rel) for f in files]
    categories = sorted({n.split("/")[0] for n in names})

    keys = list(grid)
    settings = [dict(zip(keys, combo, strict=False)) for combo in itertools.product(*grid.values())]
    runs: list[dict[str, np.ndarray]] = []
    t0 = time.perf_counter()
    configs = [replace(DEFAULTS, **s) for s in settings]
    with multiprocessing.Pool(args.jobs) as pool:
        for scores in pool.imap(partial(run_detector, files), configs):
            runs.append(dict(zip(names, scores, strict=False)))
    print(f"{len(settings)} settings scored in {time.perf_counter() - t0:.1f} s")

    print("nested LOCO: setting and threshold chosen on 6 categories, the 7th scored")
    pooled, folds = loco(scorer, runs, names, categories)
    print(f"{'held-out category':24s} {'setting':52s} {'thr':>6s} {'held-out':>9s}")
    for cat, (k, thr, norm) in zip(categories, folds, strict=False):
        label = " ".join(f"{key}={settings[k][key]}" for key in keys)
        print(f"{cat:24s} {label:52s} {thr:6.3f} {norm:9.2f}")
    print(f"LOCO pooled held-out standard score: {pooled:.2f}")
    chosen = [(k, thr) for k, thr, _ in folds]

    print("per fixed setting (threshold alone chosen on 6 categories): dev best / LOCO pooled, top 5")
    table = []
    for k, run in enumerate(runs):
        dev = scorer.best(run, names)[2]
        table.append((loco(scorer, [run], names, categories)[0], dev, k))
    for lo, dev, k in sorted(table, reverse=True)[:5]:
        print(f"  {settings[k]}  dev {dev:6.2f}  LOCO {lo:6.2f}")

    mode, _ = Counter(k for k, _ in chosen).most_common(1)[0]
    ship_thr = statistics.median(thr for k, thr in chosen if k == mode)
    print(f"most chosen setting: {settings[mode]}, median fold threshold {ship_thr:.3f}")

    shipped = next((i for i, s in enumerate(settings) if all(getattr(DEFAULTS, key) == s[key] for key in keys)), None)
    if shipped is None:
        print("DEFAULTS is outside the grid")
        return 0
    run = runs[shipped]
    for profile in PROFILES:
        thr, _, best = scorer.best(run, names, profile)
        _, fixed = scorer.at(run, names, DEFAULT_THRESHOLD, profile)
        print(
            f"DEFAULTS dev {profile:20s} best {best:6.2f} (thr {thr:.3f})   "
            f"at DEFAULT_THRESHOLD {DEFAULT_THRESHOLD}: {fixed:6.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
