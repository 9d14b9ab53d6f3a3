"""The one typed place for configuration.

`collectors.load_config()` reads the TOML file at $CASKALYTICS_CONFIG (default ./config.toml) into a `Config`:
the shared sections here, each `[sources.NAME]` by the settings model its collector declares. A wrong or
missing key raises `ConfigError` with one line naming the file, the key and what was expected. Secrets are
never in the file: a `*_env` key names the environment variable that holds them (`Config.secret`).
"""
from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, ValidationError, field_validator

SCHEDULE_PATTERN = re.compile(r"^every (\d+) (minute|minutes|hour|hours)$|^daily at (\d\d):(\d\d)$")


class ConfigError(Exception):
    """A configuration problem, phrased for the operator in one line."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WarehouseConfig(Section):
    dir: Path = Path("var")
    timezone: str = "UTC"
    data_path: str = ""          # "" = <dir>/lake/ ; may be an s3:// URL

    @field_validator("timezone")
    @classmethod
    def known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"an IANA time zone name such as 'Europe/Berlin', got {value!r}") from None
        return value


class ApiConfig(Section):
    host: str = "127.0.0.1"
    port: int = 8000
    token_env: str = "CASKALYTICS_API_TOKEN"


class DashboardConfig(Section):
    host: str = "127.0.0.1"      # the dashboard has no login of its own: expose it only behind one
    port: int = 8501


class SourceConfig(Section):
    """Keys every source shares; each source adds its own."""
    enabled: StrictBool = True
    schedule: str = "every 15 minutes"
    history_days: int = Field(default=400, ge=1)     # first-run backfill depth
    chunk_days: int = Field(default=7, ge=1)         # catch-up and backfill step

    @field_validator("schedule")
    @classmethod
    def readable_schedule(cls, value: str) -> str:
        match = SCHEDULE_PATTERN.match(value)
        possible = match and (int(match.group(1)) > 0 if match.group(1) else
                              int(match.group(3)) < 24 and int(match.group(4)) < 60)
        if not possible:
            raise ValueError(f"'every N minutes', 'every N hours' or 'daily at HH:MM' (N > 0, a real time of day), "
                             f"got {value!r}")
        return value


class DemoConfig(Section):
    """`make run` starts the local simulators named here; production configs leave this out."""
    simulators: StrictBool = False
    moto_port: int = 5055
    github_port: int = 8091


class ReplicationConfig(Section):
    enabled: StrictBool = True
    replica_url: str = ""        # "" = <warehouse.dir>/replica ; or s3://bucket/path
    endpoint_url: str = ""


class DisabledSource(SourceConfig):
    """A source switched off with `enabled = false`: no other key is needed, and any left there are kept unread."""
    model_config = ConfigDict(extra="allow")
    enabled: StrictBool = False


class SourcesConfig(dict):
    """`[sources.*]` sections by source name, each validated by the model its collector declares; a source
    without a section reads as None (`cfg.sources.github`)."""

    def __getattr__(self, name: str) -> SourceConfig | None:
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    path: Path = Path("config.toml")
    warehouse: WarehouseConfig = WarehouseConfig()
    api: ApiConfig = ApiConfig()
    dashboard: DashboardConfig = DashboardConfig()
    sources: SourcesConfig = SourcesConfig()
    demo: DemoConfig = DemoConfig()
    replication: ReplicationConfig = ReplicationConfig()
    notify: dict[str, Any] = {}      # alerts issue
    alerts: dict[str, Any] = {}      # alerts issue
    # What the registry attaches at load (`collectors.load_config`): the sources' declarations, which the
    # warehouse reads to create tables and compute metrics, and the demo's stand-in secrets.
    _catalog: Any = PrivateAttr(default=None)
    _demo_secrets: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def catalog(self) -> Any:
        if self._catalog is None:
            raise ConfigError("this Config was not loaded through collectors.load_config, so it knows no sources")
        return self._catalog

    def enabled_sources(self) -> dict[str, SourceConfig]:
        return {name: section for name, section in self.sources.items() if section.enabled}

    def source(self, name: str) -> SourceConfig:
        known = self.catalog.sources
        if name not in known:
            raise ConfigError(f"unknown source {name!r}; sources are: {', '.join(known)}")
        section = self.sources.get(name)
        if section is None:
            raise ConfigError(f"{self.path}: [sources.{name}] is missing")
        return section

    def secret(self, env_name: str) -> str | None:
        """The value of the environment variable a `*_env` key names (None when unset or empty). With
        `[demo] simulators = true`, the demo's stand-in credentials fill in for unset variables, so every
        documented command works against the running demo."""
        return os.environ.get(env_name) or self._demo_secrets.get(env_name) or None

    @property
    def warehouse_dir(self) -> Path:
        base = self.warehouse.dir
        return base if base.is_absolute() else (self.path.parent / base).resolve()


def default_path() -> Path:
    return Path(os.environ.get("CASKALYTICS_CONFIG", "config.toml"))


def read_toml(path: str | Path | None = None) -> tuple[dict[str, Any], Path]:
    """The TOML file's tables, refusing a missing, unreadable or empty file in one line."""
    path = Path(path) if path else default_path()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (set CASKALYTICS_CONFIG or create ./config.toml)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if not data:
        raise ConfigError(f"{path}: the file is empty; start from config.example.toml")
    return data, path


def from_dict(data: dict[str, Any], path: str | Path, source_models: dict[str, type[SourceConfig]]) -> Config:
    """A `Config` from TOML tables; each `[sources.NAME]` is validated by `source_models[NAME]`."""
    data = dict(data)
    sections = data.pop("sources", {})
    if not isinstance(sections, dict):
        raise ConfigError(f"{path}: sources expected a table of [sources.NAME] sections")
    sources = SourcesConfig()
    for name, section in sections.items():
        if name not in source_models:
            raise ConfigError(f"{path}: sources.{name} is not a known source (sources are: {', '.join(source_models)})")
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: sources.{name} expected a table [sources.{name}]")
        model = DisabledSource if section.get("enabled", True) is False else source_models[name]
        sources[name] = _validated(model, section, path, f"sources.{name}.")
    cfg = _validated(Config, {**data, "path": Path(path).resolve()}, path)
    cfg.sources = sources
    return cfg


def _validated(model: type[BaseModel], data: dict[str, Any], path: str | Path, prefix: str = ""):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = prefix + ".".join(str(part) for part in first["loc"])
        if first["type"] == "missing":
            expected = "is required but missing"
        elif first["type"] == "extra_forbidden":
            expected = "is not a known key"
        else:
            message = first["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
            expected = "expected " + message
        raise ConfigError(f"{path}: {key} {expected}") from None
