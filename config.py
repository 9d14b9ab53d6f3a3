"""The one typed place for configuration.

`load()` reads the TOML file at $CASKALYTICS_CONFIG (default ./config.toml) into a `Config`. A wrong or
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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SOURCE_NAMES = ("salesforce", "beacon", "youtube", "linkedin", "twitter", "meltwater", "seo", "github",
                "s3_access_logs")

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
    port: int = 8501


class SourceConfig(Section):
    """Keys every source shares; each source adds its own."""
    enabled: bool = True
    schedule: str = "every 15 minutes"
    history_days: int = Field(default=400, ge=1)     # first-run backfill depth
    chunk_days: int = Field(default=7, ge=1)         # catch-up and backfill step

    @field_validator("schedule")
    @classmethod
    def readable_schedule(cls, value: str) -> str:
        if not SCHEDULE_PATTERN.match(value):
            raise ValueError(f"'every N minutes', 'every N hours' or 'daily at HH:MM', got {value!r}")
        return value


class S3AccessLogsConfig(SourceConfig):
    bucket: str
    prefix: str = "logs/"
    endpoint_url: str = ""
    region: str = "us-east-1"
    version_pattern: str = r"(?P<artifact>[^/]+)/(?P<version>\d+(?:\.\d+)+)/"
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"
    relist_hours: int = Field(default=2, ge=0)       # S3 may deliver a log object after later-keyed ones
    batch_megabytes: int = Field(default=64, ge=1)   # bounds memory per committed chunk

    @field_validator("version_pattern")
    @classmethod
    def pattern_has_version(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"a regular expression, got {value!r} ({exc})") from None
        if "version" not in compiled.groupindex:
            raise ValueError("a regular expression with a named group (?P<version>...)")
        return value


class GithubConfig(SourceConfig):
    repos: list[str]
    api_url: str = "https://api.github.com"
    token_env: str = "GITHUB_TOKEN"
    webhook_secret_env: str = "GITHUB_WEBHOOK_SECRET"
    schedule: str = "every 1 hour"

    @field_validator("repos")
    @classmethod
    def owner_slash_name(cls, value: list[str]) -> list[str]:
        for repo in value:
            if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
                raise ValueError(f"repositories as 'owner/name', got {repo!r}")
        return value


class OtherSourceConfig(SourceConfig):
    """Sources not built yet keep their sections loadable (the contract names them)."""
    model_config = ConfigDict(extra="allow")


class SourcesConfig(Section):
    s3_access_logs: S3AccessLogsConfig | None = None
    github: GithubConfig | None = None
    salesforce: OtherSourceConfig | None = None
    beacon: OtherSourceConfig | None = None
    youtube: OtherSourceConfig | None = None
    linkedin: OtherSourceConfig | None = None
    twitter: OtherSourceConfig | None = None
    meltwater: OtherSourceConfig | None = None
    seo: OtherSourceConfig | None = None


class DemoConfig(Section):
    """`make run` starts the local simulators named here; production configs leave this out."""
    simulators: bool = False
    moto_port: int = 5055
    github_port: int = 8091


class ReplicationConfig(Section):
    enabled: bool = True
    replica_url: str = ""        # "" = <warehouse.dir>/replica ; or s3://bucket/path
    endpoint_url: str = ""


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path = Path("config.toml")
    warehouse: WarehouseConfig = WarehouseConfig()
    api: ApiConfig = ApiConfig()
    dashboard: DashboardConfig = DashboardConfig()
    sources: SourcesConfig = SourcesConfig()
    demo: DemoConfig = DemoConfig()
    replication: ReplicationConfig = ReplicationConfig()
    notify: dict[str, Any] = {}      # alerts issue
    alerts: dict[str, Any] = {}      # alerts issue

    def enabled_sources(self) -> dict[str, SourceConfig]:
        return {name: section for name in SOURCE_NAMES
                if (section := getattr(self.sources, name)) is not None and section.enabled}

    def source(self, name: str) -> SourceConfig:
        if name not in SOURCE_NAMES:
            raise ConfigError(f"unknown source {name!r}; sources are: {', '.join(SOURCE_NAMES)}")
        section = getattr(self.sources, name)
        if section is None:
            raise ConfigError(f"{self.path}: [sources.{name}] is missing")
        return section

    def secret(self, env_name: str) -> str | None:
        """The value of the environment variable a `*_env` key names (None when unset or empty)."""
        return os.environ.get(env_name) or None

    @property
    def warehouse_dir(self) -> Path:
        base = self.warehouse.dir
        return base if base.is_absolute() else (self.path.parent / base).resolve()


def default_path() -> Path:
    return Path(os.environ.get("CASKALYTICS_CONFIG", "config.toml"))


def load(path: str | Path | None = None) -> Config:
    path = Path(path) if path else default_path()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (set CASKALYTICS_CONFIG or create ./config.toml)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return from_dict(data, path)


def from_dict(data: dict[str, Any], path: str | Path = "config.toml") -> Config:
    try:
        return Config.model_validate({**data, "path": Path(path).resolve()})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        if first["type"] == "missing":
            expected = "is required but missing"
        elif first["type"] == "extra_forbidden":
            expected = "is not a known key"
        else:
            expected = "expected " + first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{path}: {key} {expected}") from None
