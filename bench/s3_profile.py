"""Where the ingest time goes, and what the experiments in `bench/variants.py` change: each variant runs the
ingest in a fresh process (alternating with the unchanged code, `--repeat` times each), on the cached
generated logs, and is compared with it on wall time, CPU time, peak RSS and fingerprints of what was stored.

    python bench/s3_profile.py [--lines 1000000] [--mode local|s3] [--repeat 2] VARIANT[+VARIANT] ...
    python bench/s3_profile.py --trace            # the costliest SQL statements of one unchanged run

CPU seconds are the steadier figure when other processes share the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile

from measure import BENCH, OUT, PYTHON, MotoServer, dataset, run_measured

WORKER = str(BENCH / "ingest_worker.py")


def ingest(mode: str, data, variants: list[str], moto: MotoServer | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="warehouse-", dir=OUT) as warehouse:
        command = [PYTHON, WORKER, mode, "--warehouse", warehouse]
        command += ["--endpoint", moto.endpoint, "--bucket", "profile"] if moto else ["--objects", str(data.objects)]
        for v in variants:
            command += ["--variant", v]
        run = run_measured(command, env=moto.worker_env() if moto else None)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result["peak_mb"] = run.peak_mb
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", help="NAME[=VALUE], several joined with +")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--mode", choices=["local", "s3"], default="local")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--trace", action="store_true", help="print the costliest statements of one run")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    data = dataset(args.lines, need_file=False)

    moto = MotoServer().__enter__() if args.mode == "s3" else None
    try:
        if moto:
            moto.upload("profile", data.objects)
        if args.trace:
            result = ingest(args.mode, data, ["trace_sql=30"], moto)
            print(f"{result['seconds']:.1f} s wall, {result['cpu_seconds']:.1f} s CPU, {result['peak_mb']:.0f} MB peak")
            return
        arms = [[]] + [spec.split("+") for spec in args.variants]
        results: dict[int, list[dict]] = {i: [] for i in range(len(arms))}
        for round_ in range(args.repeat):
            for i, arm in enumerate(arms):              # interleaved, so that load changes hit every arm alike
                print(f"round {round_ + 1}: {'+'.join(arm) or 'unchanged'} ...", flush=True)
                results[i].append(ingest(args.mode, data, arm, moto))
    finally:
        if moto:
            moto.__exit__()

    base = results[0]
    print(f"\n{data.lines:,} lines, {args.mode} mode, median of {args.repeat}; load now {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<44}{'wall s':>8}{'CPU s':>8}{'CPU vs base':>12}{'peak MB':>9}  same rows/cube")
    phase_names = sorted({k for runs in results.values() for r in runs for k in r["phases_cpu"]})
    for i, arm in enumerate(arms):
        runs = results[i]
        wall = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu_seconds"] for r in runs)
        peak = max(r["peak_mb"] for r in runs)
        base_cpu = statistics.median(r["cpu_seconds"] for r in base)
        same = all(r["raw_hash"] == base[0]["raw_hash"] and r["cube_hash"] == base[0]["cube_hash"] for r in runs)
        print(f"{'+'.join(arm) or 'unchanged':<44}{wall:8.2f}{cpu:8.2f}{100 * (cpu / base_cpu - 1):+11.1f}%"
              f"{peak:9.0f}  {'yes' if same else 'NO'}")
        print("    CPU s by phase: " + ", ".join(
            f"{p} {statistics.median(r['phases_cpu'].get(p, 0) for r in runs):.2f}" for p in phase_names))


if __name__ == "__main__":
    main()
