"""The one registry of sources: each collector module declares everything about its source in `SOURCE`
(`collectors.base.Source`), and one line here makes it part of Caskalytics.

`load_config()` reads config.toml with every registered source's settings model and attaches the catalog of
their tables and metrics (`cfg.catalog`), which the warehouse, the API, the dashboard and the alerts read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import config
from collectors import beacon, github, linkedin, meltwater, s3_access_logs, salesforce, seo, twitter, youtube
from collectors.base import Source
from warehouse.catalog import Catalog

SOURCES: dict[str, Source] = {source.name: source for source in [
    salesforce.SOURCE,
    beacon.SOURCE,
    youtube.SOURCE,
    linkedin.SOURCE,
    twitter.SOURCE,
    meltwater.SOURCE,
    seo.SOURCE,
    github.SOURCE,
    s3_access_logs.SOURCE,
]}


def register(source: Source) -> None:
    """Add a source at run time (tests and extensions); production sources are listed in SOURCES."""
    if source.name in SOURCES:
        raise ValueError(f"a source named {source.name} is already registered")
    SOURCES[source.name] = source


def load_config(path: str | Path | None = None) -> config.Config:
    """The config at `path` (default $CASKALYTICS_CONFIG or ./config.toml), validated and ready to use."""
    data, path = config.read_toml(path)
    return config_from_dict(data, path)


def config_from_dict(data: dict[str, Any], path: str | Path = "config.toml") -> config.Config:
    cfg = config.from_dict(data, path, {name: source.settings for name, source in SOURCES.items()})
    cfg._catalog = Catalog(SOURCES.values())
    if cfg.demo.simulators:
        cfg._demo_secrets = {**config.DEMO_NOTIFY_SECRETS,
                             **{name: value for source in SOURCES.values() for name, value in source.demo.secrets.items()}}
    return cfg
