"""The dashboard's files as the browser gets them: content types, the CSP and cache headers, every
file the page loads is served, and nothing points outside the server (these machines have no
internet, and the CSP would block it anyway)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from voxshift.api import dashboard
from voxshift.api.errors import install_error_handlers


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(dashboard.router)
    with TestClient(app) as c:
        yield c


EXPECTED_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}


def test_the_package_ships_the_page_its_script_its_chart_module_and_its_stylesheet() -> None:
    assert set(EXPECTED_TYPES) <= set(dashboard.static_files())


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/"])
def test_the_page_is_html_with_a_strict_csp(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "connect-src"):
        assert directives[name] == "'self'", name
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-cache"
    assert "<title>" in response.text


@pytest.mark.parametrize("name", sorted(EXPECTED_TYPES))
def test_each_file_has_its_content_type_and_revalidates_by_etag(client: TestClient, name: str) -> None:
    response = client.get(f"/dashboard/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == EXPECTED_TYPES[name]
    assert response.headers["cache-control"] == "no-cache"
    assert response.content == dashboard.static_files()[name].body
    etag = response.headers["etag"]
    again = client.get(f"/dashboard/static/{name}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert client.head(f"/dashboard/static/{name}").status_code == 200


@pytest.mark.parametrize("path", ["/dashboard/static/missing.js", "/dashboard/static/..%2Fdashboard.py"])
def test_unknown_files_are_404_with_the_api_error_body(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_dashboard_is_not_in_the_openapi_schema() -> None:
    app = FastAPI()
    app.include_router(dashboard.router)
    assert not any(path.startswith("/dashboard") for path in app.openapi()["paths"])


def test_no_file_refers_to_another_origin() -> None:
    for name, found in dashboard.static_files().items():
        text = found.body.decode()
        assert not re.search(r"https?:", text, re.IGNORECASE), name
        assert not re.search(r"""["'(=]\s*//""", text), name  # a protocol-relative URL
        assert "@import" not in text, name


def test_every_file_the_page_and_its_modules_load_is_served(client: TestClient) -> None:
    index = client.get("/dashboard").text
    loaded = re.findall(r'(?:src|href)="([^"]+)"', index)
    assert "/dashboard/static/app.js" in loaded and "/dashboard/static/app.css" in loaded
    for url in loaded:
        if url.startswith("data:"):
            continue
        assert url.startswith("/dashboard/static/"), url
        assert client.get(url).status_code == 200, url
    for name, found in dashboard.static_files().items():
        if name.endswith(".js"):
            for module in re.findall(r'from\s+"\./([^"]+)"', found.body.decode()):
                assert client.get(f"/dashboard/static/{module}").status_code == 200, (name, module)
