"""The README's REST table is complete and true: every operation the API documents (`/openapi.json`) and the
web beacon's hit paths (answered before FastAPI's router) have a row, and every row names a real operation."""
from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api import deps, main
from api.beacon import HIT_ENDPOINTS
from conftest import ROOT, make_config

OPENAPI_PAGES = {("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json")}


def readme_rows() -> set[tuple[str, str]]:
    rows = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        if match := re.match(r"\| ((?:GET|POST|DELETE|PUT|PATCH)(?:, (?:GET|POST|DELETE|PUT|PATCH))*) \| (.*?) \|", line):
            for method in match[1].split(", "):
                rows |= {(method, path.split("?")[0]) for path in re.findall(r"`(/[^`]*)`", match[2])}
    return rows


def test_every_endpoint_is_in_the_readme_and_every_row_is_an_endpoint(tmp_path):
    deps._services = deps.Services(make_config(tmp_path))
    try:
        spec = TestClient(main.app).get("/openapi.json").json()
    finally:
        deps._services = None
    served = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    served |= {(method, path) for path, endpoint in HIT_ENDPOINTS.items() for method in endpoint.methods
               if method in ("GET", "POST")}
    served |= OPENAPI_PAGES
    rows = readme_rows()
    assert served - rows == set(), "add these to the README's REST table"
    assert rows - served == set(), "the README names operations the API does not have"
