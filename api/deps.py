"""What the endpoints share: the config (loaded once when the API starts; a bad one stops the process with
one line), the read-only lake connection, the state database, and the bearer-token check."""
from __future__ import annotations

import hmac
import sys

from fastapi import HTTPException, Request

import collectors
from config import Config, ConfigError
from warehouse.lake import Reader
from warehouse.state import State

LOCAL_CLIENTS = ("127.0.0.1", "::1", "localhost", "testclient")


class Services:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.reader = Reader(cfg)
        self.state = State(cfg)


_services: Services | None = None


def start() -> Services:
    """Load the config and open the state database, or exit: an API that cannot read its config must not
    start and then answer 500 to every request."""
    global _services
    if _services is None:
        try:
            _services = Services(collectors.load_config())
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
    return _services


def services() -> Services:
    return _services or start()


def require_token(request: Request) -> None:
    """Bearer token for read endpoints when `[api] token_env` names a set variable; without one, only
    requests from this machine are answered."""
    check_token(request, services().cfg)


def check_token(request: Request, cfg: Config) -> None:
    expected = cfg.secret(cfg.api.token_env)
    if expected is None:
        client = request.client.host if request.client else ""
        if client not in LOCAL_CLIENTS:
            raise HTTPException(401, f"set the variable named by [api] token_env ({cfg.api.token_env}) "
                                     "to serve read endpoints beyond localhost")
        return
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
