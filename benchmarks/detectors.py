"""Detector throughput on one core: samples per second over 100,000 series, and the NAB run time.

    .venv/bin/python benchmarks/detectors.py [--series 100000] [--steps 20] [--nab-data DIR]

Measures, each over ``--steps`` time steps of every series (one call per step):

* ``EwmaBaseline.partial_fit`` (full width);
* ``detectors.composite.CompositeDetector.update`` when that module exists (else "not available");
* ``DetectionEngine.update`` from ``Sample`` objects (mapping, rules, forecaster, element
  outliers, collective, composite), with 10 series per element, 5 interface metrics x 2 ports,
  in the production configuration (``DetectionEngine.from_config(DetectorsConfig())``, as
  ``vigil run`` builds it: the shipped composite included);
* ``DetectionEngine.nbytes_per_series()`` of that engine (composite included) and the
  composite's share of it;
* the NAB full run (``benchmarks/nab.py``) when it and the data exist.

Set ``OMP_NUM_THREADS=1`` etc. (done below before numpy loads) so "one core" holds. The last
line is JSON: ``baseline_samples_per_s``, ``composite_samples_per_s``, ``engine_samples_per_s``,
``bytes_per_series``, ``composite_bytes_per_series``, ``nab_seconds``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collectors.sample import Sample, SampleKind, labels_of  # noqa: E402
from config.models import DetectorsConfig  # noqa: E402
from detectors.baseline import EwmaBaseline  # noqa: E402
from detectors.engine import DetectionEngine  # noqa: E402

METRICS = ("if_in_utilization", "if_out_utilization", "if_in_errors_per_s", "if_out_errors_per_s",
           "if_in_discards_per_s")  # fmt: skip


def rows(n_series: int, steps: int, seed: int = 0) -> np.ndarray:
    """Plausible values: utilisation-like levels with noise."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 0.6, n_series) + rng.normal(0.0, 0.02, (steps, n_series))


def bench_baseline(n: int, steps: int) -> float:
    X = rows(n, steps + 1)
    est = EwmaBaseline().partial_fit(X[0])
    start = time.perf_counter()
    for x in X[1:]:
        est.partial_fit(x)
    return n * steps / (time.perf_counter() - start)


def bench_composite(n: int, steps: int) -> float | None:
    try:
        module = importlib.import_module("detectors.composite")
        detector = module.CompositeDetector()
    except (ImportError, AttributeError) as err:
        print(f"composite: not available ({err})")
        return None
    X = rows(n, steps + 1)
    t0 = 1.7e9
    detector.update(X[0], t0)
    start = time.perf_counter()
    for i, x in enumerate(X[1:], start=1):
        detector.update(x, t0 + 60.0 * i)
    return n * steps / (time.perf_counter() - start)


def bench_engine(n: int, steps: int) -> tuple[float, float, float]:
    ports = n // len(METRICS)
    keys = [(f"el-{p // 2}", m, labels_of(ifIndex=str(p % 2 + 1), ifName=f"xe-0/0/{p % 2}"))
            for p in range(ports) for m in METRICS]  # fmt: skip
    X = rows(len(keys), steps + 1)
    engine = DetectionEngine.from_config(DetectorsConfig())  # production: the composite included
    batches = [
        [Sample(e, m, lab, float(v), 60.0 * i, SampleKind.RATE) for (e, m, lab), v in zip(keys, x, strict=True)]
        for i, x in enumerate(X)
    ]
    engine.update(batches[0])  # creates the series
    start = time.perf_counter()
    for batch in batches[1:]:
        engine.update(batch)
    rate = len(keys) * steps / (time.perf_counter() - start)
    composite = engine.composite
    share = composite.nbytes_per_series() * composite.n_features_in_ / engine.series_count if composite else 0.0
    return rate, engine.nbytes_per_series(), share


def bench_nab(data: Path) -> float | None:
    script = ROOT / "benchmarks" / "nab.py"
    if not script.exists():
        print("nab: benchmarks/nab.py does not exist")
        return None
    if not data.is_dir():
        print(f"nab: no data at {data}")
        return None
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(script), "--data", str(data), "--out", out],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"nab: failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        return None
    return elapsed


def main() -> None:
    """Run every measurement and print the figures, JSON last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--nab-data", type=Path, default=ROOT.parent / "shared" / "nab" / "data")
    args = parser.parse_args()

    baseline = bench_baseline(args.series, args.steps)
    print(f"baseline  EwmaBaseline.partial_fit     {baseline:>14,.0f} samples/s")
    composite = bench_composite(args.series, args.steps)
    if composite is not None:
        print(f"composite CompositeDetector.update     {composite:>14,.0f} samples/s")
    engine, nbytes, composite_nbytes = bench_engine(args.series, args.steps)
    print(f"engine    DetectionEngine.update       {engine:>14,.0f} samples/s (from Sample objects, from_config)")
    print(f"memory    numpy state per series       {nbytes:>14,.0f} bytes ({composite_nbytes:,.0f} of them composite)")
    nab = bench_nab(args.nab_data)
    if nab is not None:
        print(f"nab       benchmarks/nab.py full run   {nab:>14,.1f} s")
    print(json.dumps({
        "baseline_samples_per_s": round(baseline),
        "composite_samples_per_s": None if composite is None else round(composite),
        "engine_samples_per_s": round(engine),
        "bytes_per_series": round(nbytes, 1),
        "composite_bytes_per_series": round(composite_nbytes, 1),
        "nab_seconds": None if nab is None else round(nab, 1),
        "series": args.series,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
