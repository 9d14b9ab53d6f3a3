"""Shared test fixtures: real servers (moto S3 on loopback) and throwaway warehouses."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

import collectors
import config as config_module
import slow_tests
from simulators.ports import free_port, wait_for_port   # tests import them from here too

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"     # recorded payloads; provenance in its README.md


@pytest.hookimpl(tryfirst=True)     # before `-m "not slow"` deselects by marker
def pytest_collection_modifyitems(items):
    slow_tests.mark_slow(items)


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real moto server (S3 and SNS) on a free loopback port, for the whole session."""
    port = free_port()
    process = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def aws_env(monkeypatch):
    monkeypatch.setenv("TEST_AWS_KEY", "testing")
    monkeypatch.setenv("TEST_AWS_SECRET", "testing")
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)


@pytest.fixture
def s3_bucket(moto_endpoint, aws_env):
    """A fresh bucket on the moto server, and a client to fill it."""
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    name = f"logs-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    return client, name


def make_config(tmp_path: Path, timezone: str = "UTC", **sources) -> config_module.Config:
    """A config for a warehouse under tmp_path, also written as TOML for subprocesses."""
    data = {"warehouse": {"dir": str(tmp_path / "var"), "timezone": timezone}, "sources": sources}
    path = tmp_path / "config.toml"
    path.write_text(to_toml(data))
    return collectors.load_config(path)


def to_toml(data: dict, prefix: str = "") -> str:
    scalars, tables = [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(to_toml(value, f"{prefix}{key}."))
        else:
            scalars.append(f"{key} = {_toml_value(value)}")
    head = f"[{prefix[:-1]}]\n" if prefix and scalars else ""
    return head + "".join(s + "\n" for s in scalars) + "".join(tables)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "'" + str(value) + "'" if "'" not in str(value) else '"' + str(value).replace("\\", "\\\\") + '"'


@pytest.fixture
def s3_config(tmp_path, s3_bucket, moto_endpoint):
    _, bucket = s3_bucket
    return make_config(tmp_path, s3_access_logs={
        "bucket": bucket, "prefix": "logs/", "endpoint_url": moto_endpoint,
        "access_key_id_env": "TEST_AWS_KEY", "secret_access_key_env": "TEST_AWS_SECRET"})


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("CASKALYTICS_"):
            monkeypatch.delenv(name)


class RunningApi:
    def __init__(self, base_url: str, process: subprocess.Popen):
        self.base_url = base_url
        self.process = process


def start_api(cfg: config_module.Config, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> RunningApi:
    """The real API in its own uvicorn process, as `make run` starts it (plus uvicorn `args`)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", *args],
        cwd=ROOT, env={**os.environ, "CASKALYTICS_CONFIG": str(cfg.path), **(env or {})})
    wait_for_port(port)
    return RunningApi(f"http://127.0.0.1:{port}", process)


@pytest.fixture
def api_server():
    """Call with a config (and extra env); the server stops after the test."""
    started: list[RunningApi] = []

    def start(cfg, env=None):
        started.append(start_api(cfg, env))
        return started[-1]
    yield start
    for server in started:
        server.process.terminate()
        server.process.wait(10)
