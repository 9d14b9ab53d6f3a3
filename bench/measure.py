"""Shared by the benchmarks: cached generated logs, child processes measured by wall time and peak RSS,
and a throwaway moto S3 server."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import boto3

from generate_s3_logs import generate

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
sys.path.insert(0, str(BENCH.parent))
from simulators.ports import free_port, wait_for_port  # noqa: E402
PYTHON = sys.executable


@dataclass
class Run:
    seconds: float          # wall time of the whole child process
    cpu_seconds: float      # its user + system CPU time (all threads)
    peak_mb: float          # its peak resident set size
    stdout: str


def run_measured(command: list[str], env: dict | None = None, quiet: bool = False) -> Run:
    """Run a child to completion; wait4 gives the peak RSS of that child alone."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL if quiet else None, text=True)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command[0]} exited with {process.returncode}")
    # Linux: ru_maxrss is in KiB.
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout)


@dataclass
class Dataset:
    lines: int
    file: Path              # every line in one file (for GoAccess)
    objects: Path           # the same lines as S3 log objects under objects/logs/
    megabytes: float


def dataset(lines: int, seed: int = 42, object_megabytes: float = 4.0, need_file: bool = True) -> Dataset:
    """Generated logs, cached under bench/out/ (a `done.json` marks a complete set)."""
    folder = OUT / f"s3-{lines}-seed{seed}-{object_megabytes:g}mb"
    done = folder / "done.json"
    if done.exists() and (folder / "all.log").exists() >= need_file:
        summary = json.loads(done.read_text())
    else:
        print(f"generating {lines:,} S3 log lines in {folder.relative_to(BENCH.parent)} ...", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        done.unlink(missing_ok=True)
        made = generate(lines, seed, folder / "all.log" if need_file else None, folder / "objects", object_megabytes)
        summary = {"lines": made.lines, "bytes": made.bytes, "objects": made.objects}
        done.write_text(json.dumps(summary))
    return Dataset(summary["lines"], folder / "all.log", folder / "objects", summary["bytes"] / 1e6)


class MotoServer:
    """`moto_server` on a free loopback port for the duration of a `with` block."""

    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> MotoServer:
        self.process = subprocess.Popen([str(Path(PYTHON).parent / "moto_server"), "-H", "127.0.0.1", "-p",
                                         str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(self.port, "moto_server", seconds=30)
        except RuntimeError as exc:
            self.__exit__()
            raise SystemExit(str(exc)) from None
        return self

    def __exit__(self, *_exc) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)

    def client(self):
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="bench", aws_secret_access_key="bench")

    def upload(self, bucket: str, objects: Path) -> float:
        """Create `bucket` and put every file under `objects` at its relative path; returns seconds."""
        start = time.perf_counter()
        client = self.client()
        client.create_bucket(Bucket=bucket)
        files = sorted(p for p in objects.rglob("*") if p.is_file())
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda p: client.put_object(Bucket=bucket, Key=str(p.relative_to(objects)),
                                                      Body=p.read_bytes()), files))
        return time.perf_counter() - start

    def worker_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}     # plain http on loopback
        env.update(BENCH_AWS_ACCESS_KEY_ID="bench", BENCH_AWS_SECRET_ACCESS_KEY="bench")
        return env
