"""[notify] and [alerts] load into typed sections; a wrong key is refused in one line naming it."""
from __future__ import annotations

import pytest

import collectors
import config

CONTRACT = """
[notify.email]
smtp_host = "localhost"
smtp_port = 25
sender = "caskalytics@example.com"
sendgrid_api_key_env = "SENDGRID_API_KEY"
[notify.sms]
sns_region = "us-east-1"
endpoint_url = ""
[[alerts.rules]]
name = "downloads drop"
metric = "downloads"
grain = "day"
below = 100
for = 1
channels = ["email"]
recipients = ["growth@example.com"]
[alerts.failures]
recipients = ["ops@example.com"]
after = 3
"""


def load(tmp_path, text: str) -> config.Config:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return collectors.load_config(path)


def test_the_contract_example_loads_with_the_documented_meaning(tmp_path):
    cfg = load(tmp_path, CONTRACT + """
[notify]
public_url = "https://analytics.example.com/"
unsubscribe_secret_env = "UNSUB_KEY"
[alerts.digests]
daily_at = "07:30"
weekly_day = "friday"
""")
    assert cfg.notify.email.smtp_port == 25 and cfg.notify.email.starttls is False
    assert cfg.notify.email.sendgrid_url == "https://api.sendgrid.com"
    assert cfg.notify.public_url == "https://analytics.example.com"       # no trailing slash to double up
    [rule] = cfg.alerts.rules
    assert (rule.name, rule.metric, rule.grain, rule.below, rule.above, rule.for_) == (
        "downloads drop", "downloads", "day", 100, None, 1)
    assert cfg.alerts.failures.after == 3 and cfg.alerts.failures.recipients == ["ops@example.com"]
    assert (cfg.alerts.digests.daily_at, cfg.alerts.digests.weekly_day) == ("07:30", "friday")


def test_no_notify_or_alerts_section_means_defaults(tmp_path):
    cfg = load(tmp_path, "[warehouse]\ntimezone = \"UTC\"\n")
    assert cfg.alerts.rules == [] and cfg.notify.email.smtp_host == "localhost" and cfg.notify.in_doubt == "resend"


@pytest.mark.parametrize("change, key, expected", [
    (('smtp_port = 25', 'smtp_port = 0'), "notify.email.smtp_port", "greater than or equal to 1"),
    (('sender = "caskalytics@example.com"', 'sender = "caskalytics"'), "notify.email.sender", "an e-mail address"),
    (('endpoint_url = ""', 'endpoint_url = ""\nregion = "x"'), "notify.sms.region", "not a known key"),
    (('grain = "day"', 'grain = "daily"'), "alerts.rules.0.grain", "'hour', 'day'"),
    (('for = 1', 'for = 0'), "alerts.rules.0.for", "greater than or equal to 1"),
    (('channels = ["email"]', 'channels = ["pager"]'), "alerts.rules.0.channels.0", "'email' or 'sms'"),
    (('recipients = ["growth@example.com"]', 'recipients = ["+15555550123"]'), "alerts.rules.0.recipients",
     "needs 'sms' in channels"),
    (('recipients = ["ops@example.com"]', 'recipients = ["ops"]'), "alerts.failures.recipients", "E.164"),
    (('after = 3', 'after = 3\nevery = 2'), "alerts.failures.every", "not a known key"),
])
def test_a_wrong_key_is_named_with_what_was_expected(tmp_path, change, key, expected):
    with pytest.raises(config.ConfigError) as refused:
        load(tmp_path, CONTRACT.replace(*change))
    message = str(refused.value)
    assert "\n" not in message and key in message and expected in message, message


@pytest.mark.parametrize("extra, key, expected", [
    ('[alerts.digests]\ndaily_at = "8am"', "alerts.digests.daily_at", "HH:MM"),
    ('[alerts.digests]\nweekly_day = "mon"', "alerts.digests.weekly_day", "'monday'"),
    ('[notify]\npublic_url = "analytics.example.com"', "notify.public_url", "http(s) URL"),
    ('[notify]\nin_doubt = "maybe"', "notify.in_doubt", "'resend' or 'give_up'"),
    ('[notify]\nlease_seconds = 60', "notify", "lease_seconds above 120"),
    ('[[alerts.rules]]\nname = "downloads drop"\nmetric = "downloads"\nabove = 1', "alerts.rules", "distinct names"),
    ('[[alerts.rules]]\nname = "drop"\nmetric = "downloads"\nchange_below_pct = -30', "alerts.rules.1",
     "compare = "),
    ('[[alerts.rules]]\nname = "drop"\nmetric = "downloads"\nbelow = 1\nhysteresis_pct = -1',
     "alerts.rules.1.hysteresis_pct", "greater than or equal to 0"),
])
def test_other_notify_and_alert_keys_are_checked(tmp_path, extra, key, expected):
    with pytest.raises(config.ConfigError) as refused:
        load(tmp_path, CONTRACT + extra)
    assert key in str(refused.value) and expected in str(refused.value), str(refused.value)
