"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by playwright) against a
real ``voxshift serve``: tokens made with the CLI, real traffic first, then an operator logs in,
sees the API's numbers, pauses the rollout and throws the kill switch; a viewer sees no operator
buttons and the API refuses it.

Numbers are compared exactly: each figure carries the API's value as JSON in ``data-value``. Traffic
is frozen before comparing (no request is sent once the metrics have the test's requests), and each
comparison reads the API and then waits for a poll of the page that started after that read.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.cli_helpers import run
from tests.integration.server import RunningServer, start_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OPERATIONS = ("stt", "tts")
SYSTEMS = {"voice_v2": "v2", "legacy": "legacy"}
TTS_USERS = [f"dash-user-{i}" for i in range(8)]
STT_USERS = TTS_USERS[:3]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed (./dev test installs it)"
)

if CHROMIUM.exists():  # playwright is in the test set-up; only the browser may be missing
    from playwright.sync_api import Browser, Page, expect, sync_playwright

    # The page polls every 2.5 s on two shared cores: a few polls, not a deadline for the product.
    expect.set_options(timeout=30_000)


@dataclass
class Stack:
    server: RunningServer
    env: dict[str, str]
    operator: str
    viewer: str

    def get(self, path: str, token: str) -> httpx.Response:
        return httpx.get(self.server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def post(self, path: str, token: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            self.server.url + path, headers={"Authorization": f"Bearer {token}"}, json=body, timeout=30
        )

    def dashboard(self) -> dict[str, Any]:
        response = self.get("/admin/v1/dashboard", self.operator)
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        return doc


def create_token(env: dict[str, str], name: str, role: str) -> str:
    proc = run(env, "tokens", "create", name, "--role", role, "--json", process=True)
    assert proc.returncode == 0, proc.stderr
    token: str = json.loads(proc.stdout)["token"]
    return token


def tts_requests(metrics: dict[str, Any]) -> int:
    return sum(metrics["system_comparison"]["tts"]["requests"].values())


def stt_requests(metrics: dict[str, Any]) -> int:
    return sum(metrics["system_comparison"]["stt"]["requests"].values())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, whisper_model_dir: Path) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("dashboard")
    overrides = {
        "VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir),
        "VOICE_V2_ENABLED": "true",
        "VOICE_V2_ROLLOUT_PERCENTAGE": "50",  # some users on each system
        "VOICE_V2_FEATURES": '{"stt_enabled": true, "tts_enabled": true, '
        '"langgraph_integration": false, "caching_enabled": true}',
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    env.update({"VOXSHIFT_DATA_DIR": str(data_dir), **overrides})
    operator = create_token(env, "dash-operator", "operator")
    viewer = create_token(env, "dash-viewer", "viewer")
    server = start_server(data_dir, overrides, all_on_v2=False)
    try:
        stack = Stack(server, env, operator, viewer)
        # Real traffic: each user once (50 % rollout: both systems answer some), one repeated (a
        # cache lookup on v2 or a second legacy request).
        sent = 0
        for i, user in enumerate([*TTS_USERS, TTS_USERS[0]]):  # the repeated one: a cache hit on v2
            response = httpx.post(
                server.url + "/v1/audio/speech",
                json={"model": "tts-1", "input": "The dashboard shows this.", "voice": "alloy"},
                headers={"X-User-Id": user},
                timeout=120,
            )
            assert response.status_code == 200, response.text
            sent += 1
            rating = httpx.post(
                server.url + "/v1/feedback",
                json={"request_id": response.headers["X-Voxshift-Request-Id"], "rating": 2 + i % 4},
                timeout=30,
            )
            assert rating.status_code == 201, rating.text
        speech = httpx.post(
            server.url + "/v1/audio/speech",
            json={
                "model": "tts-1",
                "input": "Hello from the dashboard.",
                "voice": "alloy",
                "response_format": "wav",
            },
            headers={"X-User-Id": STT_USERS[0]},
            timeout=120,
        )
        assert speech.status_code == 200, speech.text
        sent += 1
        for user in STT_USERS:
            response = httpx.post(
                server.url + "/v1/audio/transcriptions",
                files={"file": ("hello.wav", speech.content, "audio/wav")},
                data={"model": "whisper-1"},
                headers={"X-User-Id": user},
                timeout=120,
            )
            assert response.status_code == 200, response.text
        # The metrics reach the store at the next flush; from here on no request is sent, so the
        # figures stand still while the page and the API are compared.
        for _ in range(300):
            metrics = stack.dashboard()["metrics"]
            if tts_requests(metrics) == sent and stt_requests(metrics) == len(STT_USERS):
                break
            time.sleep(0.1)
        assert tts_requests(metrics) == sent and stt_requests(metrics) == len(STT_USERS), metrics
        # The rollout runs, so the page has a current phase and criteria to show.
        proc = run(env, "rollout", "start", "--yes", "--reason", "dashboard test", process=True)
        assert proc.returncode == 0, proc.stderr
        yield stack
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1300, "height": 1600})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A refused inline style or script is only a console message: it counts as an error here.
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    page.goto(stack.server.url + "/dashboard")
    yield page
    context.close()
    assert not errors, errors  # no script error and no CSP violation on the page


def log_in(page: Page, token: str) -> None:
    page.get_by_test_id("token-input").fill(token)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login")).to_be_hidden()


def polls(page: Page) -> int:
    return int(page.get_by_test_id("last-update").get_attribute("data-polls") or "0")


def wait_for_poll_after(page: Page, seen: int) -> None:
    """Until the page has rendered a poll that started after the caller read the API and then saw
    ``seen`` polls rendered: poll ``seen + 1`` may have been in flight already, ``seen + 2`` was not."""
    expect(page.get_by_test_id("last-update")).to_have_attribute(
        "data-polls", re.compile("^(" + "|".join(str(n) for n in range(seen + 2, seen + 200)) + ")$")
    )


def expected_figures(doc: dict[str, Any]) -> dict[str, Any]:
    """What the page must show, by data-testid, read from the API's dashboard document."""
    m, rollout = doc["metrics"], doc["rollout"]
    out: dict[str, Any] = {
        "rollout-state": rollout["state"],
        "rollout-phase": rollout["phase"],
        "rollout-stt-percentage": rollout["percentages"]["stt"],
        "rollout-tts-percentage": rollout["percentages"]["tts"],
    }
    for op in OPERATIONS:
        for system, short in SYSTEMS.items():
            lat = m["latency_metrics"][op][system]
            out[f"metric-{op}-{short}-requests"] = m["system_comparison"][op]["requests"][system]
            for p in ("p50", "p95", "p99"):
                out[f"metric-{op}-{short}-{p}"] = lat[f"{p}_ms"]
            out[f"metric-{op}-{short}-error-rate"] = m["error_rates"][op][system]
        out[f"metric-{op}-v2-share"] = m["system_comparison"][op]["voice_v2_share"]
        out[f"metric-{op}-fallbacks"] = m["fallback_rates"][op]["fallbacks"]
        out[f"metric-{op}-fallback-rate"] = m["fallback_rates"][op]["rate"]
        out[f"metric-{op}-total-failures"] = m["total_failures"][op]
        out[f"metric-{op}-shadow-agreement"] = m["shadow"][op]["agreement_rate"]
        out[f"metric-{op}-shadow-comparisons"] = m["shadow"][op]["comparisons"]
        out[f"metric-{op}-cache-hit-rate"] = m["cache_hit_rates"][op]["rate"]
        out[f"metric-{op}-cache-lookups"] = m["cache_hit_rates"][op]["lookups"]
    for r in doc["feedback"]["ratings"]:
        out[f"feedback-{r['system']}-{r['operation']}-count"] = r["count"]
        out[f"feedback-{r['system']}-{r['operation']}-mean"] = r["mean"]
    for i, c in enumerate(rollout["criteria"]):
        for field in ("metric", "value", "threshold", "samples", "verdict"):
            out[f"criterion-{i}-{field}"] = c[field]
    return out


def shown_figures(page: Page, names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        raw = page.get_by_test_id(name).get_attribute("data-value")
        out[name] = None if raw is None else json.loads(raw)
    return out


def expected_audit(doc: dict[str, Any]) -> list[list[Any]]:
    return [[e["at"], e["kind"], e["actor"], e["reason"] or "—", e["summary"]] for e in doc["audit"]]


def shown_audit(page: Page) -> list[list[Any]]:
    rows = []
    for row in page.get_by_test_id("audit-row").all():
        at = json.loads(row.get_by_test_id("audit-at").get_attribute("data-value") or "null")
        rows.append([at, *(c.strip() for c in row.locator("td").all_inner_texts()[1:])])
    return rows


def js_text(value: float) -> str:
    """JavaScript's ``String(number)``, which the page uses for raw numbers: one number type, so a
    whole float has no ".0" (1539.0 shows as "1539"); otherwise the same shortest form as Python's."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def rate_text(value: float | None) -> str:
    """The page's rendering of a rate (documented in app.js): a percentage, two decimals, rounded
    half up as JavaScript's toFixed does on the double's exact value."""
    from decimal import ROUND_HALF_UP, Decimal

    if value is None:
        return "—"
    return f"{Decimal(value * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)} %"


def assert_page_shows_the_api(page: Page, stack: Stack) -> dict[str, Any]:
    """The figures the page shows equal the API's; retried on a fresh read if the document itself
    moved in between (the controller's evaluation can land at any moment), at most a few times."""
    for _attempt in range(5):
        doc = stack.dashboard()
        expected = expected_figures(doc)
        wait_for_poll_after(page, polls(page))
        shown = shown_figures(page, sorted(expected))
        audit = shown_audit(page)
        again = stack.dashboard()
        if shown == expected and audit == expected_audit(doc):
            return doc
        if expected_figures(again) == expected and expected_audit(again) == expected_audit(doc):
            break  # the document did not move: a real difference
    assert shown == expected
    assert audit == expected_audit(doc)
    return doc


def test_a_wrong_token_shows_the_apis_message(page: Page, stack: Stack) -> None:
    api = stack.get("/admin/v1/whoami", "not-a-token")
    assert api.status_code == 401
    page.get_by_test_id("token-input").fill("not-a-token")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_have_text(api.json()["error"]["message"])
    expect(page.get_by_test_id("login")).to_be_visible()


def test_the_operator_sees_the_apis_numbers_pauses_and_kills(page: Page, stack: Stack) -> None:
    log_in(page, stack.operator)
    assert stack.operator not in page.url
    expect(page.get_by_test_id("whoami-name")).to_have_text("dash-operator")
    expect(page.get_by_test_id("whoami-role")).to_have_text("operator")

    doc = assert_page_shows_the_api(page, stack)
    m = doc["metrics"]
    # The test's own traffic is in it, on both systems (8 users at 50 %).
    assert tts_requests(m) == len(TTS_USERS) + 2
    ratings = doc["feedback"]["ratings"]
    assert sum(r["count"] for r in ratings) == len(TTS_USERS) + 1 and len(ratings) == 2, ratings
    assert all(m["system_comparison"]["tts"]["requests"][system] > 0 for system in SYSTEMS), m
    assert sum(m["system_comparison"]["stt"]["requests"].values()) == len(STT_USERS)
    # Requests per minute, from the page's own polls: none since the traffic stopped.
    expect(page.get_by_test_id("metric-tts-v2-per-minute")).to_have_attribute("data-value", "0")
    expect(page.get_by_test_id("metric-tts-legacy-per-minute")).to_have_attribute("data-value", "0")
    # Rendering of rates and milliseconds as documented.
    for op in OPERATIONS:
        expect(page.get_by_test_id(f"metric-{op}-v2-error-rate")).to_have_text(
            rate_text(m["error_rates"][op]["voice_v2"])
        )
        p95 = m["latency_metrics"][op]["voice_v2"]["p95_ms"]
        expect(page.get_by_test_id(f"metric-{op}-v2-p95")).to_have_text("—" if p95 is None else js_text(p95))
    # Provider availability, as the replica's /readyz says (one replica here).
    ready = httpx.get(stack.server.url + "/readyz", timeout=10).json()
    expect(page.get_by_test_id("ready-status")).to_have_attribute("data-value", json.dumps(ready["status"]))
    assert ready["engines"]
    for name, info in ready["engines"].items():
        expect(page.get_by_test_id(f"engine-{name}")).to_have_attribute(
            "data-value", json.dumps(info["available"])
        )
    # The plan as a timeline, the current phase highlighted; the criteria of that phase.
    rollout = doc["rollout"]
    assert rollout["state"] == "running" and rollout["criteria"], rollout
    current = page.get_by_test_id(f"timeline-phase-{rollout['phase']}")
    expect(current).to_have_attribute("aria-current", "step")
    expect(page.locator("[data-testid^=timeline-phase-]")).to_have_count(len(rollout["plan"]["phases"]))
    expect(page.locator("[aria-current=step]")).to_have_count(1)
    # The charts draw the polled series.
    for op in OPERATIONS:
        for chart in ("latency", "error-rate", "requests"):
            expect(page.get_by_test_id(f"chart-{op}-{chart}").locator("svg path.line")).not_to_have_count(0)

    # Pause: a reason and a confirmation are asked for; the state changes on the page.
    page.get_by_test_id("action-pause").click()
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_be_visible()
    page.get_by_test_id("confirm-reason").fill("dashboard pause")
    page.get_by_test_id("confirm-check").check()
    page.get_by_test_id("confirm-ok").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("action-result")).to_have_attribute("data-state", "ok")
    expect(page.get_by_test_id("rollout-state")).to_have_attribute("data-value", '"paused"')

    # The dialog refuses without a reason (nothing is sent), then the kill switch is thrown.
    page.get_by_test_id("action-kill").click()
    page.get_by_test_id("confirm-check").check()
    page.get_by_test_id("confirm-ok").click()
    expect(dialog).to_be_visible()
    assert stack.dashboard()["flags"]["enabled"] is True
    page.get_by_test_id("confirm-reason").fill("latency spike seen on the dashboard")
    page.get_by_test_id("confirm-ok").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("action-result")).to_have_attribute("data-state", "ok")
    expect(page.get_by_test_id("flag-enabled")).to_have_attribute("data-value", "false")
    expect(page.get_by_test_id("flag-kill-switch")).to_have_attribute("data-value", "true")
    row = page.get_by_test_id("audit-row").filter(has_text="latency spike seen on the dashboard")
    expect(row).to_have_count(1)
    expect(row.get_by_test_id("audit-actor")).to_have_text("token:dash-operator")
    expect(row.get_by_test_id("audit-kind")).to_have_text("flags")
    # ... and the API says the same.
    after = stack.dashboard()
    assert after["flags"]["enabled"] is False
    entry = next(e for e in after["audit"] if e["reason"] == "latency spike seen on the dashboard")
    assert entry["actor"] == "token:dash-operator"

    # An action the API refuses shows the API's message (a reason longer than the API takes).
    too_long = "x" * 2001
    refused = stack.post("/admin/v1/rollout/resume", stack.operator, {"reason": too_long})
    assert refused.status_code == 400, refused.text
    page.get_by_test_id("action-resume").click()
    page.get_by_test_id("confirm-reason").fill(too_long)
    page.get_by_test_id("confirm-check").check()
    page.get_by_test_id("confirm-ok").click()
    result = page.get_by_test_id("action-result")
    expect(result).to_have_attribute("data-action", "resume")
    expect(result).to_have_attribute("data-state", "error")
    expect(result).to_contain_text(refused.json()["error"]["message"])
    expect(page.get_by_test_id("rollout-state")).to_have_attribute("data-value", '"paused"')
    # Under a person's kill switch a paused rollout does not resume: it would only pause again.
    under_kill = stack.post("/admin/v1/rollout/resume", stack.operator, {"reason": "carry on"})
    assert under_kill.status_code == 409 and "kill switch is on" in under_kill.json()["error"]["message"]

    # Log out: the token leaves the tab.
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0


def test_a_viewer_sees_no_operator_buttons_and_the_api_refuses_it(page: Page, stack: Stack) -> None:
    log_in(page, stack.viewer)
    expect(page.get_by_test_id("whoami-role")).to_have_text("viewer")
    expect(page.get_by_test_id("last-update")).not_to_have_attribute("data-polls", "0")
    assert_page_shows_the_api(page, stack)
    expect(page.get_by_test_id("operator-actions")).to_be_hidden()
    expect(page.locator("button.action:visible")).to_have_count(0)
    refused = stack.post("/admin/v1/flags/kill", stack.viewer, {"reason": "a viewer tries"})
    assert refused.status_code == 403
    assert refused.json()["error"]["message"]
    # A reload keeps the session (the token is in sessionStorage, never in the URL).
    page.reload()
    expect(page.get_by_test_id("whoami-name")).to_have_text("dash-viewer")
    assert stack.viewer not in page.url


def test_the_server_serves_the_dashboard_with_its_csp(stack: Stack) -> None:
    for path in ("/dashboard", "/dashboard/", "/dashboard/static/app.js", "/dashboard/static/app.css"):
        response = httpx.get(stack.server.url + path, timeout=10)
        assert response.status_code == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
    assert (
        httpx.get(stack.server.url + "/dashboard", timeout=10).headers["content-type"].startswith("text/html")
    )
