"""config.load: one typed Config from TOML; every problem is one line naming the file, the key and what was
expected; secrets come from the environment variables the `*_env` keys name, never from the file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import collectors
from config import ConfigError

MINIMAL = """
[warehouse]
dir = "var"
timezone = "America/New_York"

[sources.s3_access_logs]
bucket = "my-logs"

[sources.github]
repos = ["owner/name"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "caskalytics.toml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        collectors.load_config(path)
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    assert str(path) in message, f"does not name the file: {message!r}"
    return message


def test_a_minimal_file_loads_with_defaults(tmp_path):
    cfg = collectors.load_config(write(tmp_path, MINIMAL))
    assert cfg.warehouse.timezone == "America/New_York"
    assert cfg.warehouse_dir == (tmp_path / "var").resolve()      # relative to the config file
    s3 = cfg.source("s3_access_logs")
    assert s3.bucket == "my-logs" and s3.prefix == "logs/" and s3.enabled
    assert "version" in __import__("re").compile(s3.version_pattern).groupindex
    assert cfg.source("github").repos == ["owner/name"]
    assert set(cfg.enabled_sources()) == {"s3_access_logs", "github"}


def test_the_path_comes_from_caskalytics_config(tmp_path, monkeypatch):
    path = write(tmp_path, MINIMAL)
    monkeypatch.setenv("CASKALYTICS_CONFIG", str(path))
    assert collectors.load_config().path == path.resolve()


def test_the_contract_example_loads(tmp_path):
    cfg = collectors.load_config(write(tmp_path, """
[warehouse]
dir = "var"
timezone = "UTC"
[api]
port = 8000
token_env = "CASKALYTICS_API_TOKEN"
[sources.s3_access_logs]
enabled = true
bucket = "my-logs"
prefix = "logs/"
endpoint_url = ""
region = "us-east-1"
version_pattern = '(?P<artifact>[^/]+)/(?P<version>\\d+(?:\\.\\d+)+)/'
[sources.github]
enabled = true
repos = ["owner/name"]
api_url = "https://api.github.com"
token_env = "GITHUB_TOKEN"
webhook_secret_env = "GITHUB_WEBHOOK_SECRET"
[sources.salesforce]
enabled = false
schedule = "daily at 06:30"
[notify.email]
smtp_host = "localhost"
[[alerts.rules]]
name = "downloads drop"
metric = "downloads"
"""))
    assert cfg.api.port == 8000
    assert set(cfg.enabled_sources()) == {"s3_access_logs", "github"}


def test_a_missing_required_key_names_it(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace('bucket = "my-logs"', 'prefix = "logs/"'))
    assert "sources.s3_access_logs.bucket" in message and "required" in message


def test_an_unknown_key_names_it(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace('bucket = "my-logs"', 'bucket = "my-logs"\nbuckett = "x"'))
    assert "sources.s3_access_logs.buckett" in message and "not a known key" in message
    message = load_error(tmp_path, MINIMAL + '\n[warehouse2]\ndir = "x"\n')
    assert "warehouse2" in message and "not a known key" in message


def test_a_bad_timezone_names_the_key_and_what_was_expected(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace("America/New_York", "Mars/Olympus_Mons"))
    assert "warehouse.timezone" in message and "IANA time zone" in message and "Mars/Olympus_Mons" in message


@pytest.mark.parametrize("schedule", ["every 5 fortnights", "hourly", "daily at 6", "every minutes"])
def test_a_bad_schedule_names_the_key_and_the_accepted_forms(tmp_path, schedule):
    message = load_error(tmp_path, MINIMAL.replace('bucket = "my-logs"', f'bucket = "my-logs"\nschedule = "{schedule}"'))
    assert "sources.s3_access_logs.schedule" in message and "every N minutes" in message and schedule in message


@pytest.mark.parametrize("schedule", ["every 5 minutes", "every 1 minute", "every 2 hours", "every 1 hour",
                                      "daily at 06:30"])
def test_the_schedule_forms_load(tmp_path, schedule):
    cfg = collectors.load_config(write(tmp_path, MINIMAL.replace('bucket = "my-logs"', f'bucket = "my-logs"\nschedule = "{schedule}"')))
    assert cfg.source("s3_access_logs").schedule == schedule


@pytest.mark.parametrize("pattern, expected", [("(?P<version>[0-9", "a regular expression"),
                                               ("(?P<artifact>[^/]+)/([0-9.]+)/", "(?P<version>...)")])
def test_a_bad_version_pattern_names_the_key(tmp_path, pattern, expected):
    message = load_error(tmp_path, MINIMAL.replace('bucket = "my-logs"', f"bucket = \"my-logs\"\nversion_pattern = '{pattern}'"))
    assert "sources.s3_access_logs.version_pattern" in message and expected in message


def test_a_wrong_type_names_the_key(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace('repos = ["owner/name"]', 'repos = "owner/name"'))
    assert "sources.github.repos" in message and "expected" in message
    message = load_error(tmp_path, MINIMAL.replace('repos = ["owner/name"]', 'repos = ["not-a-repo"]'))
    assert "sources.github.repos" in message and "owner/name" in message


def test_a_missing_file_says_so(tmp_path):
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as info:
        collectors.load_config(path)
    message = str(info.value)
    assert str(path) in message and "not found" in message and "CASKALYTICS_CONFIG" in message
    assert "\n" not in message


def test_bad_toml_says_so(tmp_path):
    message = load_error(tmp_path, MINIMAL + "\n[sources.github\nrepos = [\n")
    assert "not valid TOML" in message


def test_an_unknown_source_is_a_one_line_error(tmp_path):
    cfg = collectors.load_config(write(tmp_path, MINIMAL))
    with pytest.raises(ConfigError, match="unknown source 'facebook'"):
        cfg.source("facebook")
    with pytest.raises(ConfigError, match=r"\[sources.youtube\] is missing"):
        cfg.source("youtube")


def test_secrets_come_from_the_environment_variables_the_env_keys_name(tmp_path, monkeypatch):
    cfg = collectors.load_config(write(tmp_path, MINIMAL.replace('repos = ["owner/name"]',
                                                      'repos = ["owner/name"]\ntoken_env = "MY_GH_TOKEN"')))
    github = cfg.source("github")
    assert github.token_env == "MY_GH_TOKEN"
    monkeypatch.delenv("MY_GH_TOKEN", raising=False)
    assert cfg.secret(github.token_env) is None
    monkeypatch.setenv("MY_GH_TOKEN", "")
    assert cfg.secret(github.token_env) is None                   # empty counts as unset
    monkeypatch.setenv("MY_GH_TOKEN", "ghp_secret")
    assert cfg.secret(github.token_env) == "ghp_secret"
    # the defaults name variables, never hold secrets
    s3 = cfg.source("s3_access_logs")
    assert (s3.access_key_id_env, s3.secret_access_key_env) == ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    assert cfg.api.token_env == "CASKALYTICS_API_TOKEN"


def test_a_secret_value_in_the_file_is_not_a_known_key(tmp_path):
    message = load_error(tmp_path, MINIMAL.replace('repos = ["owner/name"]', 'repos = ["owner/name"]\ntoken = "ghp_x"'))
    assert "sources.github.token" in message and "not a known key" in message


def test_from_dict_names_the_path_it_was_given(tmp_path):
    with pytest.raises(ConfigError) as info:
        collectors.config_from_dict({"warehouse": {"dir": str(tmp_path), "timezone": "Nowhere/Land"}}, tmp_path / "config.toml")
    assert str(tmp_path / "config.toml") in str(info.value) and "warehouse.timezone" in str(info.value)


@pytest.mark.parametrize("schedule", ["daily at 25:99", "every 0 minutes"])
def test_an_impossible_schedule_is_rejected_at_load(tmp_path, schedule):
    load_error(tmp_path, MINIMAL.replace('bucket = "my-logs"', f'bucket = "my-logs"\nschedule = "{schedule}"'))


# -- fails early, never half-starts ---------------------------------------------------------------------------
def test_a_source_switched_off_needs_no_other_key(tmp_path):
    cfg = collectors.load_config(write(tmp_path, "[sources.github]\nenabled = false\n"))
    assert cfg.sources.github.enabled is False and "github" not in cfg.enabled_sources()


@pytest.mark.parametrize("text, expected", [
    ('[sources.github]\nenabled = "yes"\nrepos = ["o/n"]\n', "sources.github.enabled expected a valid boolean"),
    ("", "the file is empty"),
    ("# nothing but a comment\n", "the file is empty"),
    ('[sources.myspace]\nenabled = true\n', "sources.myspace is not a known source"),
    ("[sources.s3_access_logs]\nbucket = 'b'\nversion_pattern = '(?P<version>\\d+)(?=/)'\n",
     "sources.s3_access_logs.version_pattern expected a regular expression DuckDB's RE2 engine can run"),
])
def test_what_loads_silently_elsewhere_is_refused_in_one_line(tmp_path, text, expected):
    with pytest.raises(ConfigError) as refused:
        collectors.load_config(write(tmp_path, text))
    assert expected in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "uvicorn", "api.main:app", "--port", "0"],
    [sys.executable, "-m", "dashboard", "--server.port", "0"],
    [sys.executable, "scheduler.py", "status"],
])
def test_every_process_refuses_a_bad_config_at_start_with_the_same_line(tmp_path, command):
    path = write(tmp_path, "[warehouse]\ntimezone = 'Mars/Olympus'\n")
    done = subprocess.run(command, cwd=Path(collectors.__file__).parents[1], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "CASKALYTICS_CONFIG": str(path)})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "warehouse.timezone expected an IANA time zone name" in last
    assert "Traceback" not in done.stderr


def test_the_example_config_loads_with_every_source_on():
    cfg = collectors.load_config(Path(collectors.__file__).parents[1] / "config.example.toml")
    assert set(cfg.enabled_sources()) == set(collectors.SOURCES)
