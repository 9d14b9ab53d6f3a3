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
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, ValidationError, field_validator,
                      model_validator)

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
    # POST /sql: the time limit of one query, and the most rows a JSON answer may ask for with "limit"
    sql_timeout_seconds: float = Field(10.0, gt=0, le=3600)
    sql_row_limit: int = Field(100_000, ge=1, le=100_000)
    # Exports (/export/..., POST /sql?format=): the whole stream, the client's reading of it included
    export_timeout_seconds: float = Field(900.0, gt=0, le=3600)


class DashboardConfig(Section):
    host: str = "127.0.0.1"      # another address needs the password below (or OIDC, see docs/dashboard.md)
    port: int = 8501
    password_env: str = "CASKALYTICS_DASHBOARD_PASSWORD"    # set: one shared password opens the dashboard


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
    mail: StrictBool = True      # a local SendGrid at [notify.email] sendgrid_url, writing <dir>/mail/


# The demo's stand-in credential for its local SendGrid (the sources declare theirs in `Source.demo`).
DEMO_NOTIFY_SECRETS = {"DEMO_SENDGRID_API_KEY": "demo-sendgrid-key"}


class ReplicationConfig(Section):
    enabled: StrictBool = True
    replica_url: str = ""        # "" = <warehouse.dir>/replica ; or s3://bucket/path
    endpoint_url: str = ""


# -- notifications and alerts ---------------------------------------------------------------------------------
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                           r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
PHONE_PATTERN = re.compile(r"^\+[1-9]\d{1,14}$")        # E.164
GRAINS = ("hour", "day", "week", "month", "quarter", "year")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _recipients(value: list[str]) -> list[str]:
    for address in value:
        if not (EMAIL_PATTERN.match(address) or PHONE_PATTERN.match(address)):
            raise ValueError(f"e-mail addresses or E.164 phone numbers such as '+15555550123', got {address!r}")
    return value


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
        raise ValueError(f"an http(s) URL such as 'https://analytics.example.com', got {value!r}")
    return value.rstrip("/")


class EmailConfig(Section):
    """SMTP by default; SendGrid's v3 API when the variable `sendgrid_api_key_env` names is set."""
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    sender: str = "caskalytics@example.com"
    starttls: bool = False               # upgrade with STARTTLS before AUTH and the message
    ca_bundle: str = ""                  # PEM file of CAs to trust for STARTTLS; "" = the system CAs
    username: str = ""                   # "" = no SMTP AUTH
    password_env: str = "SMTP_PASSWORD"
    timeout_seconds: float = Field(default=30, gt=0)
    sendgrid_api_key_env: str = "SENDGRID_API_KEY"
    sendgrid_url: str = "https://api.sendgrid.com"
    unsubscribe_mailto: str = ""         # optional second List-Unsubscribe target, e.g. unsubscribe@example.com

    @field_validator("sender")
    @classmethod
    def sender_address(cls, value: str) -> str:
        if not EMAIL_PATTERN.match(value):
            raise ValueError(f"an e-mail address such as 'caskalytics@example.com', got {value!r}")
        return value

    @field_validator("unsubscribe_mailto")
    @classmethod
    def mailto_address(cls, value: str) -> str:
        if value and not EMAIL_PATTERN.match(value):
            raise ValueError(f"an e-mail address (or \"\"), got {value!r}")
        return value

    @field_validator("sendgrid_url")
    @classmethod
    def sendgrid_http_url(cls, value: str) -> str:
        return _http_url(value)


class SmsConfig(Section):
    """SMS through Amazon SNS Publish to a phone number."""
    sns_region: str = "us-east-1"
    endpoint_url: str = ""               # SNS-compatible endpoint (tests, moto); "" = AWS
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"
    sms_type: Literal["Transactional", "Promotional"] = "Transactional"
    timeout_seconds: float = Field(default=30, gt=0)


class NotifyConfig(Section):
    """How messages leave: channels, the links they carry, and the outbox's retry and in-doubt policy."""
    public_url: str = "http://127.0.0.1:8000"        # the API as recipients reach it (unsubscribe links)
    dashboard_url: str = "http://127.0.0.1:8501"     # links in messages
    unsubscribe_secret_env: str = "CASKALYTICS_UNSUBSCRIBE_SECRET"   # unset = a random key kept in state.sqlite
    unsubscribe_link_days: int = Field(default=90, ge=1)
    max_attempts: int = Field(default=8, ge=1)        # then the message is dead
    retry_base_seconds: float = Field(default=60, gt=0)
    retry_max_seconds: float = Field(default=3600, gt=0)
    lease_seconds: float = Field(default=300, gt=0)   # a send still unconfirmed after this is in doubt
    in_doubt: Literal["resend", "give_up"] = "resend"     # at-least-once (same Message-ID) or at-most-once
    email: EmailConfig = EmailConfig()
    sms: SmsConfig = SmsConfig()

    @field_validator("public_url", "dashboard_url")
    @classmethod
    def http_urls(cls, value: str) -> str:
        return _http_url(value)

    @model_validator(mode="after")
    def lease_outlasts_a_send(self) -> "NotifyConfig":
        # A lease that runs out while its send is still going would let a second sender send it too.
        slowest = max(self.email.timeout_seconds * 4, self.sms.timeout_seconds * 4)   # connect, TLS, AUTH, DATA
        if self.lease_seconds <= slowest:
            raise ValueError(f"lease_seconds above {slowest:g} (4 x the longest channel timeout), got {self.lease_seconds:g}")
        return self


class AlertRule(Section):
    name: str
    metric: str
    grain: Literal[GRAINS] = "day"
    below: float | None = None
    above: float | None = None
    for_: int = Field(default=1, ge=1, alias="for")   # consecutive evaluated buckets before firing
    channels: list[Literal["email", "sms"]] = ["email"]
    recipients: list[str] = []           # e-mail addresses get the e-mail channel, phone numbers the SMS one
    where: dict[str, str | list[str]] = {}    # dimension filter, e.g. {version = "3.5.0"}
    change_below_pct: float | None = None     # fire when the change against `compare` is below this (e.g. -30)
    change_above_pct: float | None = None
    compare: Literal["wow", "mom", "yoy"] | None = None
    hysteresis_pct: float = Field(default=5, ge=0, le=100)   # recover only this far (% of the mark) back inside
    min_volume: float = Field(default=0, ge=0)   # buckets with less (value, or the compared value) are skipped
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("name")
    @classmethod
    def printable_name(cls, value: str) -> str:
        if not value.strip() or len(value) > 100 or not value.isprintable():
            raise ValueError(f"a name of 1 to 100 printable characters, got {value!r}")
        return value

    @field_validator("recipients")
    @classmethod
    def reachable_recipients(cls, value: list[str], info) -> list[str]:
        channels = info.data.get("channels", [])
        for address in _recipients(value):
            channel = "sms" if PHONE_PATTERN.match(address) else "email"
            if channel not in channels:
                raise ValueError(f"recipients the rule's channels reach: {address!r} needs {channel!r} in channels")
        return value

    @model_validator(mode="after")
    def comparison_with_change(self) -> "AlertRule":
        # A rule with no condition at all loads (it never fires; the evaluator says so in its log).
        changes = (self.change_below_pct, self.change_above_pct) != (None, None)
        if changes and self.compare is None:
            raise ValueError("compare = \"wow\", \"mom\" or \"yoy\" with change_below_pct/change_above_pct")
        if self.compare is not None and not changes:
            raise ValueError("change_below_pct or change_above_pct with compare")
        return self


class FailureAlerts(Section):
    recipients: list[str] = []           # e-mail addresses get e-mail, phone numbers SMS
    after: int = Field(default=3, ge=1)  # consecutive failed runs of one source

    @field_validator("recipients")
    @classmethod
    def recipient_addresses(cls, value: list[str]) -> list[str]:
        return _recipients(value)


class DigestConfig(Section):
    """When digests go to their subscribers (topics digest:daily, digest:weekly), in [warehouse] timezone."""
    daily_at: str = "08:00"
    weekly_day: Literal[WEEKDAYS] = "monday"
    dashboard: str = "Marketing funnel"      # the saved dashboard whose PDF report each digest attaches

    @field_validator("daily_at")
    @classmethod
    def time_of_day(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"a time of day as HH:MM such as '08:00', got {value!r}")
        return value


class AlertsConfig(Section):
    rules: list[AlertRule] = []
    failures: FailureAlerts = FailureAlerts()
    digests: DigestConfig = DigestConfig()

    @field_validator("rules")
    @classmethod
    def unique_names(cls, value: list[AlertRule]) -> list[AlertRule]:
        names = [rule.name for rule in value]
        if duplicate := next((name for name in names if names.count(name) > 1), None):
            raise ValueError(f"rules with distinct names, got {duplicate!r} twice")
        return value


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
    notify: NotifyConfig = NotifyConfig()
    alerts: AlertsConfig = AlertsConfig()
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
