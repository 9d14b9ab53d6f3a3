"""The freshness badge's words: a source whose runs wrote data but never finished ok is not "never collected"."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dashboard.data import Freshness
from dashboard.widgets import freshness_text



def test_data_from_runs_that_failed_is_not_called_never_collected():
    now = datetime.now(timezone.utc)
    fresh = Freshness("linkedin", "failing", "every 10 minutes", None, now - timedelta(hours=2), 3, "HTTP 503")
    assert freshness_text(fresh) == "failing (3 runs in a row), no run finished ok yet, newest data 2 h ago"


def test_a_source_with_nothing_at_all_is_never_collected():
    fresh = Freshness("seo", "failing", "every 10 minutes", None, None, 1, "HTTP 503")
    assert freshness_text(fresh) == "failing (1 run in a row), never collected, no data yet"
    assert freshness_text(Freshness("seo", "never", "every 10 minutes", None, None, 0, None)) == "not collected yet"


def test_a_fresh_source_says_when_it_was_collected():
    now = datetime.now(timezone.utc)
    fresh = Freshness("github", "fresh", "every 10 minutes", now - timedelta(minutes=4), now - timedelta(hours=1), 0, None)
    assert freshness_text(fresh) == "collected 4 min ago, newest data 1 h ago"
