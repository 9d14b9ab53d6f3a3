"""`/docs` (Swagger UI) and `/redoc` served from files on this machine: FastAPI's default pages load their
JavaScript and CSS from a CDN, which left a blank page without the internet.

The assets come from the pinned `fastapi-offline` wheel (Swagger UI 5, which reads OpenAPI 3.1 as FastAPI
writes it, and ReDoc 2); only its `static/` folder is used. Swagger UI's online validator badge is off, so
the page asks nothing of any other host.
"""
from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
# Answered without the bearer token (ARCHITECTURE.md, REST): health, webhooks, the beacon, unsubscribe links.
PUBLIC_PATHS = ("/health", "/webhooks/github", "/js/caskalytics.js", "/unsubscribe")


def openapi_document(app: FastAPI) -> dict:
    """FastAPI's document, told the truth about errors and auth: no operation answers 422 (validation errors
    are 400 `{"error"}`, see `api.errors`), and every operation but the public ones takes the bearer token."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description,
                               routes=app.routes)
        for path, operations in document["paths"].items():
            for operation in operations.values():
                operation["responses"].pop("422", None)
                if path not in PUBLIC_PATHS:
                    operation["security"] = [{"bearer": []}]
        components = document.setdefault("components", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(name, None)
        components["securitySchemes"] = {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "The token in the variable named by [api] token_env (when that variable is set)"}}
        app.openapi_schema = document
    return app.openapi_schema


def install(app: FastAPI) -> None:
    """Serve the docs pages and their assets (create the app with `docs_url=None, redoc_url=None`)."""
    app.openapi = lambda: openapi_document(app)
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True})

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
                              redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png", with_google_fonts=False)
