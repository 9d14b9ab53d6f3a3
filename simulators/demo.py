"""The demo's wiring: start the local simulators that stand in for each enabled source (`make run` with
`[demo] simulators = true`). What each source needs is declared in its collector module (`Source.demo`); the
stand-in credentials reach every process through `Config.secret` (see `collectors.load_config`)."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

import collectors
from config import Config
from simulators import sendgrid
from simulators.ports import wait_for_port

BIN = Path(sys.executable).parent


def start_simulators(cfg: Config, start: Callable[[str, list[str], dict[str, str]], object]) -> None:
    """Each enabled source whose declaration names a demo simulator gets it, started as that module's
    `demo_process(cfg)` says, after the servers it needs (moto, an S3-compatible server, for the S3 logs).
    `start(name, args, env)` starts a process with `env` added to its environment: the source's demo
    credentials (`Config.secret`: a variable already set wins), which a simulator reads from the variables
    its `*_env` arguments name, as the collector does. Each is waited for until it listens on its port."""
    print("Starting the demo simulators...")
    enabled = [collectors.SOURCES[name] for name in cfg.enabled_sources()]
    if any("moto" in source.demo.needs for source in enabled):
        start("moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(cfg.demo.moto_port)], {})
        wait_for_port(cfg.demo.moto_port, "moto server")
    for source in enabled:
        if source.demo.simulator is None:
            continue
        module = importlib.import_module(f"simulators.{source.demo.simulator}")
        args, port = module.demo_process(cfg)
        secrets = {name: cfg.secret(name) for name in source.demo.secrets}
        start(f"{source.name}-simulator", [sys.executable, "-m", f"simulators.{source.demo.simulator}", *args], secrets)
        if port:
            wait_for_port(port, f"{source.name} simulator")
    if cfg.demo.mail:      # alerts and digests go to a local SendGrid that keeps each message in var/mail/
        args, port = sendgrid.demo_process(cfg)
        key_env = cfg.notify.email.sendgrid_api_key_env
        start("sendgrid-simulator", [sys.executable, "-m", "simulators.sendgrid", *args], {key_env: cfg.secret(key_env) or ""})
        wait_for_port(port, "SendGrid simulator")
