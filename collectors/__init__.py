"""One module per source behind the small interface in `base.py`.

`REGISTRY` maps each source name to its module and class; adding a source means one module and one entry.
"""
from __future__ import annotations

import importlib

from collectors.base import Collector

REGISTRY = {
    "s3_access_logs": "collectors.s3_access_logs:S3AccessLogs",
    "github": "collectors.github:GitHub",
    "salesforce": "collectors.salesforce:Salesforce",
    "beacon": "collectors.beacon:Beacon",
    "linkedin": "collectors.linkedin:LinkedIn",
    "meltwater": "collectors.meltwater:Meltwater",
    "seo": "collectors.seo:Seo",
    "youtube": "collectors.youtube:YouTube",
    "twitter": "collectors.twitter:Twitter",
}


def get(source: str) -> Collector | None:
    """The collector for `source`, or None when none is built yet. Imported on demand, so a source's
    client libraries load only when that source runs."""
    target = REGISTRY.get(source)
    if target is None:
        return None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)()
