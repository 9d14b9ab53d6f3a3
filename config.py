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
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
        match = SCHEDULE_PATTERN.match(value)
        possible = match and (int(match.group(1)) > 0 if match.group(1) else
                              int(match.group(3)) < 24 and int(match.group(4)) < 60)
        if not possible:
            raise ValueError(f"'every N minutes', 'every N hours' or 'daily at HH:MM' (N > 0, a real time of day), "
                             f"got {value!r}")
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
    batch_megabytes: int = Field(default=24, ge=1)   # bounds memory per committed chunk (~430 MB peak RSS at 24)

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


class SalesforceConfig(SourceConfig):
    """OAuth 2.0 against `login_url` (client-credentials, or username-password), then SOQL over REST.
    Lead stages: a lead is an inquiry / MQL from the first time its Status is one of the listed values, or
    the named Lead field (a date, datetime or checkbox, e.g. a custom MQL_Date__c) is set."""
    login_url: str = "https://login.salesforce.com"     # token endpoint: <login_url>/services/oauth2/token
    grant_type: Literal["client_credentials", "password"] = "client_credentials"
    client_id_env: str = "SALESFORCE_CLIENT_ID"
    client_secret_env: str = "SALESFORCE_CLIENT_SECRET"
    username: str = ""                                   # password grant only
    password_env: str = "SALESFORCE_PASSWORD"            # password grant: password + security token
    instance_url: str = ""                               # "" = the instance_url the token answer names
    api_version: str = "59.0"
    ca_bundle: str = ""                                  # PEM file of CAs to trust; "" = the system CAs
    inquiry_statuses: list[str] = ["Working - Contacted", "Closed - Converted"]
    mql_statuses: list[str] = ["Closed - Converted"]
    inquiry_field: str = ""
    mql_field: str = ""
    status_history: bool = True          # read LeadHistory (Status tracked) to date stages reached between runs
    overlap_minutes: int = Field(default=5, ge=0)       # re-read: SystemModstamp can commit slightly late

    @field_validator("inquiry_field", "mql_field")
    @classmethod
    def api_field_name(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value):
            raise ValueError(f"a Lead field API name such as 'MQL_Date__c', got {value!r}")
        return value


class YoutubeConfig(SourceConfig):
    """YouTube Analytics (daily views, subscribers gained/lost) and the Data API (current subscriber count),
    with an OAuth 2.0 refresh token exchanged at `token_url`."""
    channel_id: str = "MINE"             # "MINE" = the channel the OAuth grant belongs to, or a "UC..." channel id
    analytics_url: str = "https://youtubeanalytics.googleapis.com/"
    data_api_url: str = "https://youtube.googleapis.com/"
    token_url: str = "https://oauth2.googleapis.com/token"
    client_id_env: str = "YOUTUBE_CLIENT_ID"
    client_secret_env: str = "YOUTUBE_CLIENT_SECRET"
    refresh_token_env: str = "YOUTUBE_REFRESH_TOKEN"
    schedule: str = "every 6 hours"
    chunk_days: int = Field(default=30, ge=1)
    late_days: int = Field(default=3, ge=0)   # YouTube revises the most recent days: re-ask them until older
    timeout_seconds: float = Field(default=30, gt=0)

    @field_validator("channel_id")
    @classmethod
    def mine_or_channel_id(cls, value: str) -> str:
        if value != "MINE" and not re.fullmatch(r"UC[\w-]{22}", value):
            raise ValueError(f"'MINE' or a channel id such as 'UCxqx59koIGfGRRGeEm5qzjQ', got {value!r}")
        return value


class TwitterConfig(SourceConfig):
    """X/Twitter API v2 follower counts of `accounts` (app-only bearer token). X keeps no follower
    history: the series starts at the first poll."""
    accounts: list[str]                  # usernames, without the @
    api_url: str = "https://api.twitter.com"
    bearer_token_env: str = "TWITTER_BEARER_TOKEN"
    schedule: str = "every 1 hour"
    timeout_seconds: float = Field(default=30, gt=0)

    @field_validator("accounts")
    @classmethod
    def usernames(cls, value: list[str]) -> list[str]:
        value = [name.removeprefix("@") for name in value]
        for name in value:
            if not re.fullmatch(r"\w{1,15}", name, re.ASCII):
                raise ValueError(f"X usernames (1 to 15 letters, digits or _), got {name!r}")
        if not value:
            raise ValueError("at least one username")
        return value


class LinkedinConfig(SourceConfig):
    """An organization page's follower count (networkSizes) and its daily follower gains
    (organizationalEntityFollowerStatistics), read with the access token of a page ADMINISTRATOR (scope
    rw_organization_admin). LinkedIn serves daily statistics for the last 12 months only."""
    organization_id: str                        # the number in urn:li:organization:<id>
    api_url: str = "https://api.linkedin.com"
    linkedin_version: str = "202610"            # the LinkedIn-Version header (YYYYMM); LinkedIn sunsets old ones
    access_token_env: str = "LINKEDIN_ACCESS_TOKEN"
    schedule: str = "every 6 hours"
    chunk_days: int = Field(default=30, ge=1)
    late_days: int = Field(default=3, ge=0)     # recent days LinkedIn may still fill in: re-asked every run

    @field_validator("organization_id")
    @classmethod
    def numeric_id(cls, value: str) -> str:
        value = value.removeprefix("urn:li:organization:")
        if not value.isdigit():
            raise ValueError(f"the organization's numeric id (from urn:li:organization:<id>), got {value!r}")
        return value

    @field_validator("linkedin_version")
    @classmethod
    def year_month(cls, value: str) -> str:
        if not re.fullmatch(r"20\d\d(0[1-9]|1[0-2])", value):
            raise ValueError(f"a LinkedIn API version as YYYYMM such as '202511', got {value!r}")
        return value


class MeltwaterConfig(SourceConfig):
    """Daily mention counts of one Meltwater saved search per brand (GET /v3/analytics/{searchId})."""
    brands: dict[str, str]     # brand -> saved search id, or a list of {brand = ..., search_id = ...} tables
    api_url: str = "https://api.meltwater.com"
    api_key_env: str = "MELTWATER_API_KEY"
    schedule: str = "every 1 hour"
    chunk_days: int = Field(default=30, ge=1)
    late_days: int = Field(default=3, ge=0)     # Meltwater keeps indexing a day's documents for a while

    @field_validator("brands", mode="before")
    @classmethod
    def mapping_or_tables(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not all(isinstance(t, dict) and set(t) == {"brand", "search_id"} for t in value):
                raise ValueError("a table {cask = \"<search id>\", ...} or a list of {brand, search_id} tables")
            return {str(t["brand"]): str(t["search_id"]) for t in value}
        return value

    @field_validator("brands")
    @classmethod
    def brand_names_and_ids(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("at least one brand and its saved search id")
        for brand, search_id in value.items():
            if not re.fullmatch(r"[\w.-]+", brand) or not search_id.strip().isdigit():
                raise ValueError(f"brand = \"<numeric saved search id>\", got {brand} = {search_id!r}")
        return {brand: search_id.strip() for brand, search_id in value.items()}


class SeoConfig(SourceConfig):
    """Keyword rankings from a rank tracker through one provider: "api" (the JSON API described in
    collectors/seo_providers.py) or "csv" (files dropped into `import_dir`, each imported once)."""
    provider: Literal["api", "csv"] = "api"
    brands: dict[str, list[str]]                # brand -> its domains, e.g. cask = ["cask.co", "cdap.io"]
    api_url: str = Field(default="", validate_default=True)
    api_key_env: str = "SEO_API_KEY"
    project: str = Field(default="", validate_default=True)
    import_dir: str = Field(default="", validate_default=True)    # relative paths: to the config file
    schedule: str = "every 6 hours"
    chunk_days: int = Field(default=14, ge=1)
    late_days: int = Field(default=1, ge=0)     # the last day a tracker reported may still be growing

    @field_validator("brands")
    @classmethod
    def brand_domains(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value:
            raise ValueError("at least one brand and its domains")
        cleaned = {}
        for brand, domains in value.items():
            cleaned[brand] = [d.strip().lower().removeprefix("www.") for d in domains]
            if not re.fullmatch(r"[\w.-]+", brand) or not domains or not all(
                    re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", d) for d in cleaned[brand]):
                raise ValueError(f"brand = [\"domain.com\", ...], got {brand} = {domains!r}")
        return cleaned

    @field_validator("api_url", "project")
    @classmethod
    def needed_by_the_api_provider(cls, value: str, info) -> str:
        if info.data.get("provider") == "api" and not value.strip():
            raise ValueError(f"a value when provider = \"api\" ({info.field_name} of your rank tracker's API)")
        return value.strip()

    @field_validator("import_dir")
    @classmethod
    def needed_by_the_csv_provider(cls, value: str, info) -> str:
        if info.data.get("provider") == "csv" and not value.strip():
            raise ValueError("the folder CSV files are dropped into, when provider = \"csv\"")
        return value.strip()


class BeaconConfig(SourceConfig):
    """The web beacon (`/api/event`, `/b.gif`): which sites' hits count, and how visitors and blog views are
    told apart. Hits arrive through the inbox (drained every 5 s); `schedule` is how often the web.* rollups
    are brought up to date."""
    sites: list[str]                        # host names, e.g. ["cask.co"]; a leading "www." is ignored
    blog_prefixes: list[str] = ["/blog/"]   # page views of paths starting with one of these are blog views
    session_minutes: int = Field(default=30, ge=1, le=1440)    # inactivity that ends a session
    visitor_days: int = Field(default=395, ge=1, le=3650)      # the snippet's visitor id lives this long after a visit
    visitor_storage: Literal["localStorage", "cookie"] = "localStorage"    # where the snippet keeps that id
    schedule: str = "every 1 minutes"       # how often the web.* rollups catch up with the drained hits

    @field_validator("sites")
    @classmethod
    def host_names(cls, value: list[str]) -> list[str]:
        hosts = [host.strip().lower().removeprefix("www.") for host in value]
        for host in hosts:
            if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*", host):
                raise ValueError(f"host names such as 'cask.co' (no scheme, port or path), got {host!r}")
        if not hosts:
            raise ValueError("at least one site")
        return hosts

    @field_validator("blog_prefixes")
    @classmethod
    def path_prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not prefix.startswith("/"):
                raise ValueError(f"path prefixes starting with '/', such as '/blog/', got {prefix!r}")
        return value


class OtherSourceConfig(SourceConfig):
    """Sources not built yet keep their sections loadable (the contract names them)."""
    model_config = ConfigDict(extra="allow")


class SourcesConfig(Section):
    s3_access_logs: S3AccessLogsConfig | None = None
    github: GithubConfig | None = None
    salesforce: SalesforceConfig | None = None
    beacon: BeaconConfig | None = None
    youtube: YoutubeConfig | None = None
    linkedin: LinkedinConfig | None = None
    twitter: TwitterConfig | None = None
    meltwater: MeltwaterConfig | None = None
    seo: SeoConfig | None = None


class DemoConfig(Section):
    """`make run` starts the local simulators named here; production configs leave this out."""
    simulators: bool = False
    moto_port: int = 5055
    github_port: int = 8091


class ReplicationConfig(Section):
    enabled: bool = True
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


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path = Path("config.toml")
    warehouse: WarehouseConfig = WarehouseConfig()
    api: ApiConfig = ApiConfig()
    dashboard: DashboardConfig = DashboardConfig()
    sources: SourcesConfig = SourcesConfig()
    demo: DemoConfig = DemoConfig()
    replication: ReplicationConfig = ReplicationConfig()
    notify: NotifyConfig = NotifyConfig()
    alerts: AlertsConfig = AlertsConfig()

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
            message = first["msg"].removeprefix("Value error, ").removeprefix("Input should be ")
            expected = "expected " + message
        raise ConfigError(f"{path}: {key} {expected}") from None
