"""Run vigil's shipped default detector over a NAB-layout corpus and write NAB-layout results.

    python benchmarks/nab.py --data ../shared/nab/data --out /tmp/nab-results [--name vigil]
    python ../shared/nab/nabscore.py --results /tmp/nab-results --detector vigil
    python ../shared/nab/nabscore.py --results /tmp/nab-results --detector vigil --threshold 0.175

Every ``<category>/<file>.csv`` under ``--data`` (columns ``timestamp,value``) becomes one column
of a single :class:`detectors.composite.CompositeDetector` built with
:data:`~detectors.composite.DEFAULTS` and :data:`~detectors.composite.DEFAULT_THRESHOLD` (the
production objects). The files are fed step by step, all at once, strictly causally: the score
of row i is computed before row i is learnt and from rows <= i only; shorter files are padded
with NaN (missing) after their end. Labels are never read.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.composite import DEFAULT_THRESHOLD, DEFAULTS, CompositeConfig, CompositeDetector


@dataclass(frozen=True, slots=True)
class NabFile:
    """One data file: its path relative to the corpus root, raw timestamps and values."""

    rel: Path
    timestamps: list[str]
    values: NDArray[np.float64]
    seconds: NDArray[np.float64]


def load_corpus(data: Path) -> list[NabFile]:
    """Every ``<category>/<file>.csv`` under ``data``, sorted by path."""
    files = []
    for path in sorted(data.glob("*/*.csv")):
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader)]
            try:
                it, iv = header.index("timestamp"), header.index("value")
            except ValueError as err:
                raise SystemExit(f"{path}: expected columns timestamp,value, got {header}") from err
            rows = [row for row in reader if row]
        stamps = [row[it] for row in rows]
        seconds = np.array(stamps, dtype="datetime64[s]").astype(np.int64).astype(np.float64)
        values = np.array([float(row[iv]) if row[iv].strip() else np.nan for row in rows])
        files.append(NabFile(path.relative_to(data), stamps, values, seconds))
    if not files:
        raise SystemExit(f"no <category>/<file>.csv under {data}")
    return files


def run_detector(files: list[NabFile], config: CompositeConfig = DEFAULTS) -> list[NDArray[np.float64]]:
    """Causal composite scores of every file, all files batched as columns of one detector."""
    n_steps = max(len(f.values) for f in files)
    X = np.full((n_steps, len(files)), np.nan)
    T = np.empty((n_steps, len(files)))
    for j, f in enumerate(files):
        n = len(f.values)
        X[:n, j] = f.values
        T[:n, j] = f.seconds
        T[n:, j] = f.seconds[-1]
    scores = CompositeDetector(config=config).score_stream(X, T)
    return [scores[: len(f.values), j] for j, f in enumerate(files)]


def write_results(out: Path, name: str, files: list[NabFile], scores: list[NDArray]) -> None:
    """``OUT/<name>/<category>/<name>_<file>.csv`` with ``timestamp,value,anomaly_score``."""
    for f, s in zip(files, scores, strict=False):
        target = out / name / f.rel.parent / f"{name}_{f.rel.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "value", "anomaly_score"])
            for ts, v, a in zip(f.timestamps, f.values, s, strict=False):
                w.writerow([ts, repr(float(v)), f"{a:.6f}"])


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write, print the run time."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="NAB data/ directory")
    ap.add_argument("--out", type=Path, required=True, help="results directory")
    ap.add_argument("--name", default="vigil", help="detector name in the results layout")
    args = ap.parse_args(argv)
    files = load_corpus(args.data)
    n_rows = sum(len(f.values) for f in files)
    t0 = time.perf_counter()
    scores = run_detector(files)
    elapsed = time.perf_counter() - t0
    write_results(args.out, args.name, files, scores)
    print(
        f"{len(files)} files, {n_rows} rows scored in {elapsed:.2f} s "
        f"({n_rows / elapsed:,.0f} rows/s, batched); default threshold {DEFAULT_THRESHOLD}"
    )
    print(f"results: {args.out / args.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
