"""The admin API (issue 13 §2) on the real app over embedded stores in a tmp data dir: tokens made
with the CLI, 401 without, with a wrong and with a revoked token, 403 for a viewer on every
changing route, the audit trail naming the token, the rollout as `voxshift rollout status --json`
sees it, agents round trips, bad bodies as 400 JSON, and the voice key on and off."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.cli_helpers import run as cli
from voxshift.api.app import create_app
from voxshift.config import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

AGENT = "agent_support_7f3a"


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VOICE_V2_", "VOXSHIFT_"))}
    return {**env, "VOXSHIFT_DATA_DIR": str(data_dir), **extra}


def issue(env: dict[str, str], name: str, role: str) -> str:
    done = cli(env, "tokens", "create", name, "--role", role, "--json")
    assert done.returncode == 0, done.stderr
    token: str = json.loads(done.stdout)["token"]
    return token


@dataclass
class Admin:
    client: httpx.AsyncClient
    env: dict[str, str]
    operator: str
    viewer: str

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    async def get(self, path: str, token: str | None = None) -> httpx.Response:
        return await self.client.get(path, headers=self.auth(token or self.operator))

    async def send(self, method: str, path: str, body: Any, token: str | None = None) -> httpx.Response:
        return await self.client.request(method, path, json=body, headers=self.auth(token or self.operator))


def settings_for(data_dir: Path, **extra: Any) -> Settings:
    return Settings(data_dir=data_dir, preload_engines=False, workers=1, legacy_workers=1, **extra)


@pytest.fixture(scope="module")
async def admin(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Admin]:
    data_dir = tmp_path_factory.mktemp("admin")
    env = cli_env(data_dir)
    operator = await asyncio.to_thread(issue, env, "ops-alice", "operator")
    viewer = await asyncio.to_thread(issue, env, "dash-bob", "viewer")
    application = create_app(settings_for(data_dir))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://voxshift") as client:
            yield Admin(client, env, operator, viewer)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def admin_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in schema["paths"].items()
        if path.startswith("/admin/v1/")
        for method, op in item.items()
    ]


def concrete(path: str) -> str:
    path = path.replace("{agent_id}", AGENT).replace("{phase}", "read_only").replace("{stage}", "pre")
    return path.replace("{backup_id}", "20261130T000000Z-none")


# --- authentication -------------------------------------------------------------------------------
async def test_every_admin_route_is_401_without_or_with_a_wrong_token(admin: Admin) -> None:
    schema = (await admin.client.get("/openapi.json")).json()
    operations = admin_operations(schema)
    assert len(operations) >= 30
    for method, path, _ in operations:
        for headers in ({}, {"Authorization": "Bearer vxs_not-a-token"}, {"Authorization": "Basic b3BzOng="}):
            response = await admin.client.request(method, concrete(path), headers=headers, json={})
            error = error_of(response, 401)
            assert response.headers["www-authenticate"] == "Bearer", (method, path)
            assert error["type"] == "authentication_error"


async def test_a_revoked_token_is_refused(admin: Admin) -> None:
    token = await asyncio.to_thread(issue, admin.env, "temp-carol", "operator")
    assert (await admin.get("/admin/v1/whoami", token)).json() == {"name": "temp-carol", "role": "operator"}
    done = await asyncio.to_thread(cli, admin.env, "tokens", "revoke", "temp-carol")
    assert done.returncode == 0 and "revoked" in done.stdout
    # The server caches a lookup for 5 s; the cache is what a revoke waits for, so expire it here.
    application = admin.client._transport.app  # type: ignore[attr-defined]
    application.state.admin_tokens[1].cache_s = 0.0
    error = error_of(await admin.get("/admin/v1/whoami", token), 401)
    assert "revoked" in error["message"]
    application.state.admin_tokens[1].cache_s = 5.0


async def test_a_viewer_reads_but_every_changing_route_is_403(admin: Admin) -> None:
    assert (await admin.get("/admin/v1/whoami", admin.viewer)).json() == {
        "name": "dash-bob",
        "role": "viewer",
    }
    assert (await admin.get("/admin/v1/flags", admin.viewer)).status_code == 200
    before = (await admin.get("/admin/v1/flags")).json()
    schema = (await admin.client.get("/openapi.json")).json()
    changing = [(m, p) for m, p, op in admin_operations(schema) if m != "GET"]
    # patch, kill, allow, deny, 6 rollout commands, agent put and delete, validate, run, backup, verify
    assert len(changing) == 16
    for method, path in changing:
        error = error_of(await admin.send(method, concrete(path), {}, admin.viewer), 403)
        assert error["type"] == "permission_error" and "viewer" in error["message"]
    assert (await admin.get("/admin/v1/flags")).json() == before  # nothing changed


# --- flags and the audit --------------------------------------------------------------------------
async def test_an_operator_kill_is_audited_with_the_token_name(admin: Admin) -> None:
    on = await admin.send("PATCH", "/admin/v1/flags", {"reason": "canary", "enabled": True, "percentage": 10})
    assert on.status_code == 200, on.text
    assert on.json()["changes"] == [
        "enabled: false -> true",
        "percentages.stt: 0 -> 10",
        "percentages.tts: 0 -> 10",
    ]
    killed = await admin.send("POST", "/admin/v1/flags/kill", {"reason": "latency spike"})
    assert killed.status_code == 200 and killed.json()["changes"] == ["enabled: true -> false"]
    assert (await admin.get("/admin/v1/flags", admin.viewer)).json()["enabled"] is False
    history = (await admin.get("/admin/v1/flags/history?limit=2", admin.viewer)).json()["items"]
    assert [(h["actor"], h["reason"], h["changes"]) for h in history] == [
        ("token:ops-alice", "latency spike", ["enabled: true -> false"]),
        ("token:ops-alice", "canary", on.json()["changes"]),
    ]
    # The CLI reads the same audit log.
    done = await asyncio.to_thread(cli, admin.env, "flags", "history", "--json", "--limit", "1")
    assert json.loads(done.stdout)[0]["actor"] == "token:ops-alice"


async def test_allow_deny_and_explain(admin: Admin) -> None:
    allowed = await admin.send("POST", "/admin/v1/flags/allow", {"user_id": "vip-1", "reason": "beta tester"})
    assert allowed.json()["flags"]["allow"]["users"] == ["vip-1"]
    denied = await admin.send("POST", "/admin/v1/flags/deny", {"user_id": "vip-1", "reason": "complained"})
    assert denied.json()["flags"]["allow"]["users"] == [] and denied.json()["flags"]["deny"]["users"] == [
        "vip-1"
    ]
    explained = (await admin.get("/admin/v1/flags/explain?user_id=vip-1&operation=tts", admin.viewer)).json()
    assert list(explained["decisions"]) == ["tts"] and explained["decisions"]["tts"]["system"] == "legacy"
    assert len(explained["explain"]) == 1
    removed = await admin.send(
        "POST", "/admin/v1/flags/deny", {"user_id": "vip-1", "remove": True, "reason": "resolved"}
    )
    assert removed.json()["flags"]["deny"]["users"] == []


# --- rollout --------------------------------------------------------------------------------------
async def test_rollout_start_and_pause_match_the_cli(admin: Admin) -> None:
    dry = await admin.send("POST", "/admin/v1/rollout/start", {"dry_run": True})
    assert dry.json()["dry_run"] is True and dry.json()["changed"] is False
    assert (await admin.get("/admin/v1/rollout")).json()["state"] == "pending"
    started = await admin.send("POST", "/admin/v1/rollout/start", {"reason": "week 1"})
    assert started.status_code == 200, started.text
    t = started.json()["transition"]
    assert (t["kind"], t["from"], t["to"], t["actor"]) == ("start", "pending", "running", "token:ops-alice")
    paused = await admin.send("POST", "/admin/v1/rollout/pause", {"reason": "holiday freeze"})
    assert paused.json()["state"] == "paused"
    again = await admin.send("POST", "/admin/v1/rollout/pause", {"reason": "twice"})
    assert error_of(again, 409)["message"] == "only a running rollout can be paused; it is paused"

    api = (await admin.get("/admin/v1/rollout", admin.viewer)).json()
    done = await asyncio.to_thread(cli, admin.env, "rollout", "status", "--json")
    assert done.returncode == 0, done.stderr
    ours = json.loads(done.stdout)
    for key in (
        "state",
        "phase",
        "step",
        "steps",
        "percentages",
        "features",
        "enabled",
        "seq",
        "plan",
        "reason",
    ):
        assert api[key] == ours[key], key
    assert api["state"] == "paused" and api["phase"] == "canary" and api["percentages"]["stt"] == 1
    history = (await admin.get("/admin/v1/rollout/history?limit=5")).json()["items"]
    assert [(h["to_phase"], h["actor"], h["reason"]) for h in history][:2] == [
        ("canary", "token:ops-alice", "holiday freeze"),
        ("canary", "token:ops-alice", "week 1"),
    ]


async def test_the_audit_merges_flags_rollout_and_sunset(admin: Admin) -> None:
    if (await admin.get("/admin/v1/rollout")).json()["state"] == "pending":
        assert (await admin.send("POST", "/admin/v1/rollout/start", {"reason": "audit"})).status_code == 200
    flagged = await admin.send(
        "PATCH", "/admin/v1/flags", {"reason": "cache on", "features": {"caching": True}}
    )
    assert flagged.json()["changes"] == ["features.caching_enabled: false -> true"]
    refused = await admin.send("POST", "/admin/v1/sunset/run/read_only", {"reason": "freeze legacy"})
    assert error_of(refused, 400)["param"] == "confirm"
    ran = await admin.send(
        "POST", "/admin/v1/sunset/run/read_only", {"reason": "freeze legacy", "confirm": True}
    )
    assert ran.status_code == 200, ran.text
    assert ran.json()["changed"] is True and ran.json()["legacy_read_only"] is True
    status = (await admin.get("/admin/v1/sunset")).json()
    assert status["phases"]["read_only"]["actor"] == "token:ops-alice" and status["legacy_read_only"] is True
    items = (await admin.get("/admin/v1/audit?limit=100", admin.viewer)).json()["items"]
    assert {i["kind"] for i in items} == {"flags", "rollout", "sunset"}
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    sunset = next(i for i in items if i["kind"] == "sunset")
    assert (sunset["actor"], sunset["summary"]) == ("token:ops-alice", "read_only completed")
    cache = next(i for i in items if i["reason"] == "cache on")
    assert (cache["kind"], cache["actor"]) == ("flags", "token:ops-alice")
    assert cache["summary"] == "features.caching_enabled: false -> true"
    assert any(i["kind"] == "rollout" and i["actor"] == "token:ops-alice" for i in items)
    dash = (await admin.get("/admin/v1/dashboard", admin.viewer)).json()
    assert dash["whoami"] == {"name": "dash-bob", "role": "viewer"}
    assert dash["audit"] == items[:20]
    assert dash["rollout"]["state"] in ("running", "paused") and dash["plan"]["phases"][0]["name"] == "canary"
    # The sunset wrote the flags through its own stores; this server's live copy follows within ~1 s.
    deadline = asyncio.get_running_loop().time() + 10
    while not dash["flags"]["legacy"]["read_only"] and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        dash = (await admin.get("/admin/v1/dashboard", admin.viewer)).json()
    assert dash["flags"]["legacy"]["read_only"] is True
    assert set(dash["metrics"]) >= {"latency_metrics", "error_rates", "system_comparison"}
    assert dash["feedback"] == {"hours": 24, "ratings": []}


# --- agents ---------------------------------------------------------------------------------------
async def test_agent_settings_round_trip(admin: Admin) -> None:
    error_of(await admin.get(f"/admin/v1/agents/{AGENT}"), 404)
    document = {"enabled": True, "intent_keywords": ["voice", "голос"]}
    created = await admin.send(
        "PUT", f"/admin/v1/agents/{AGENT}", {"settings": document, "expected_version": 0}
    )
    assert created.status_code == 200, created.text
    assert created.json()["version"] == 1 and created.json()["updated_by"] == "token:ops-alice"
    got = (await admin.get(f"/admin/v1/agents/{AGENT}", admin.viewer)).json()
    assert got == created.json() and got["settings"]["intent_keywords"] == ["voice", "голос"]
    stale = await admin.send(
        "PUT", f"/admin/v1/agents/{AGENT}", {"settings": document, "expected_version": 0}
    )
    assert error_of(stale, 409)["code"] == "version_conflict"
    updated = await admin.send(
        "PUT", f"/admin/v1/agents/{AGENT}", {"settings": {"enabled": False}, "expected_version": 1}
    )
    assert updated.json()["version"] == 2 and updated.json()["settings"]["enabled"] is False
    listed = (await admin.get("/admin/v1/agents")).json()
    assert [a["agent_id"] for a in listed["items"]] == [AGENT] and listed["next_after"] is None
    # The CLI sees what the API wrote.
    done = await asyncio.to_thread(cli, admin.env, "agents", "show", AGENT)
    assert json.loads(done.stdout)["version"] == 2
    bad = await admin.send("PUT", f"/admin/v1/agents/{AGENT}", {"settings": {"enabled": "maybe"}})
    assert error_of(bad, 400)["param"].startswith("settings")
    # Delete: only the version read (409 otherwise), an operator's, then gone (404).
    stale_delete = await admin.client.delete(
        f"/admin/v1/agents/{AGENT}?expected_version=1", headers=admin.auth(admin.operator)
    )
    assert error_of(stale_delete, 409)["code"] == "version_conflict"
    gone = await admin.client.delete(f"/admin/v1/agents/{AGENT}", headers=admin.auth(admin.operator))
    assert gone.json() == {"agent_id": AGENT, "deleted": True, "version": 2, "by": "token:ops-alice"}
    error_of(await admin.get(f"/admin/v1/agents/{AGENT}"), 404)
    error_of(await admin.client.delete(f"/admin/v1/agents/{AGENT}", headers=admin.auth(admin.operator)), 404)
    done = await asyncio.to_thread(cli, admin.env, "agents", "show", AGENT)
    assert done.returncode != 0


# --- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body", "param"),
    [
        ("PATCH", "/admin/v1/flags", {"reason": "x", "percentage": 300}, "percentage"),
        ("PATCH", "/admin/v1/flags", {"reason": "x", "percent": 10}, "percent"),
        ("PATCH", "/admin/v1/flags", {"percentage": 10}, "reason"),
        ("PATCH", "/admin/v1/flags", {"reason": "x"}, None),
        ("PATCH", "/admin/v1/flags", {"reason": "x", "features": {"warp": True}}, "feature"),
        ("POST", "/admin/v1/flags/kill", {"reason": ""}, "reason"),
        ("POST", "/admin/v1/flags/allow", {"reason": "x"}, "user_id"),
        ("POST", "/admin/v1/flags/allow", {"reason": "x", "user_id": "a", "agent_id": "b"}, "user_id"),
        ("POST", "/admin/v1/rollout/promote", {}, "reason"),
        ("POST", "/admin/v1/rollout/promote", {"reason": "x", "force": "very"}, "force"),
        ("POST", "/admin/v1/sunset/run/everything", {"confirm": True, "reason": "x"}, "path.phase"),
        ("PUT", f"/admin/v1/agents/{AGENT}", {"enabled": True}, "settings"),
    ],
)
async def test_bad_bodies_are_400_json(
    admin: Admin, method: str, path: str, body: Any, param: str | None
) -> None:
    error = error_of(await admin.send(method, path, body), 400)
    assert error["param"] == param, error


async def test_malformed_requests_are_4xx_json(admin: Admin) -> None:
    raw = await admin.client.patch(
        "/admin/v1/flags",
        content=b"{not json",
        headers={**admin.auth(admin.operator), "content-type": "application/json"},
    )
    error_of(raw, 400)
    error_of(await admin.get("/admin/v1/flags/history?limit=0"), 400)
    error_of(await admin.get("/admin/v1/readiness/someday"), 400)
    error_of(await admin.get("/admin/v1/flags/explain?operation=both"), 400)
    error_of(await admin.send("POST", "/admin/v1/rollout/launch", {"reason": "x"}), 404)


# --- the voice key --------------------------------------------------------------------------------
async def test_the_voice_key_guards_the_voice_api_only_and_is_no_admin_token(
    tmp_path: Path,
) -> None:
    key = "voice-key-0123456789abcdef"
    env_token = "admin-bootstrap-0123456789"
    env = cli_env(tmp_path)
    operator = await asyncio.to_thread(issue, env, "ops", "operator")
    application = create_app(settings_for(tmp_path, voice_api_key=key, admin_token=env_token))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://voxshift") as client:
            error = error_of(await client.get("/v1/models"), 401)
            assert error["code"] == "invalid_api_key"
            error_of(await client.get("/v1/models", headers={"Authorization": f"Bearer {operator}"}), 401)
            error_of(await client.get("/v2/flags", headers={"Authorization": "Bearer wrong"}), 401)
            assert (
                await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
            ).status_code == 200
            assert (
                await client.get("/v2/flags", headers={"Authorization": f"Bearer {key}"})
            ).status_code == 200
            error_of(await client.get("/admin/v1/whoami", headers={"Authorization": f"Bearer {key}"}), 401)
            who = await client.get("/admin/v1/whoami", headers={"Authorization": f"Bearer {env_token}"})
            assert who.json() == {"name": "env", "role": "operator"}
            for open_path in ("/healthz", "/metrics"):
                assert (await client.get(open_path)).status_code == 200, open_path
            # A signed object URL carries its own credential: no key asked, only the signature checked.
            error_of(await client.get("/v2/objects/voice-v2-files/audio/x.wav?expires=1&sig=00"), 403)


async def test_without_a_voice_key_the_voice_api_stays_open(admin: Admin) -> None:
    assert (await admin.client.get("/v1/models")).status_code == 200
    error_of(await admin.client.get("/v1/models/nope"), 404)


async def test_a_used_token_shows_when_it_was_last_used(admin: Admin) -> None:
    assert (await admin.get("/admin/v1/whoami", admin.viewer)).status_code == 200
    done = await asyncio.to_thread(cli, admin.env, "tokens", "list", "--json")
    used = {t["name"]: t["last_used_at"] for t in json.loads(done.stdout) if t["active"]}
    assert used["dash-bob"] is not None and used["ops-alice"] is not None
    assert all(admin.viewer not in line and admin.operator not in line for line in done.stdout.splitlines())


async def test_on_redis_and_postgresql_a_kill_and_a_rollout_are_audited(
    tmp_path: Path, clean_redis: Any, postgres_url: str
) -> None:
    """The production back-ends: tokens in PostgreSQL (after `voxshift db upgrade`), flags and the
    rollout state in Redis; the CLI and the API see the same audit trail."""
    env = cli_env(tmp_path, VOXSHIFT_DATABASE_URL=postgres_url, VOXSHIFT_STATE_URL=clean_redis.url)
    upgraded = await asyncio.to_thread(cli, env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    operator = await asyncio.to_thread(issue, env, "pg-ops", "operator")
    settings = settings_for(tmp_path, database_url=postgres_url, state_url=clean_redis.url)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://voxshift") as client:
            headers = {"Authorization": f"Bearer {operator}"}
            started = await client.post("/admin/v1/rollout/start", json={"reason": "pg"}, headers=headers)
            assert started.json()["state"] == "running", started.text
            killed = await client.post("/admin/v1/flags/kill", json={"reason": "drill"}, headers=headers)
            assert killed.json()["changes"] == ["enabled: true -> false"]
            items = (await client.get("/admin/v1/audit", headers=headers)).json()["items"]
    assert [(i["kind"], i["actor"], i["reason"]) for i in items[:3]] == [
        ("flags", "token:pg-ops", "drill"),
        ("flags", "token:pg-ops (rollout)", "rollout start: pg"),
        ("rollout", "token:pg-ops", "pg"),
    ]
    done = await asyncio.to_thread(cli, env, "flags", "show", "--json")
    assert json.loads(done.stdout)["enabled"] is False


async def test_sunset_plan_report_validate_and_a_guarded_phase(admin: Admin) -> None:
    plan = (await admin.get("/admin/v1/sunset/plan", admin.viewer)).json()
    assert [p["phase"] for p in plan] == ["read_only", "data_migration", "infrastructure_cleanup"]
    assert (await admin.get("/admin/v1/sunset/report", admin.viewer)).json() == {"summary": {}, "items": []}
    validated = await admin.send("POST", "/admin/v1/sunset/validate", None)
    assert validated.status_code == 200, validated.text
    recorded = (await admin.get("/admin/v1/sunset")).json()["validation"]
    assert recorded["clean"] is validated.json()["clean"]
    cleanup = next(p for p in plan if p["phase"] == "infrastructure_cleanup")
    assert cleanup["refusals"]
    refused = await admin.send(
        "POST", "/admin/v1/sunset/run/infrastructure_cleanup", {"confirm": True, "reason": "too early"}
    )
    error = error_of(refused, 409)
    assert error["code"] == "sunset_refused" and error["message"].startswith(
        "infrastructure_cleanup refused: "
    )
    items = (await admin.get("/admin/v1/audit?limit=5")).json()["items"]
    assert any(i["kind"] == "sunset" and i["reason"].startswith("sunset validation") for i in items)


async def test_backups_list_create_verify_and_resolve(admin: Admin) -> None:
    assert (await admin.get("/admin/v1/backups", admin.viewer)).json() == []
    created = await admin.send("POST", "/admin/v1/backups", None)
    assert created.status_code == 201, created.text
    backup = created.json()
    assert backup["id"] and set(backup["counts"]) >= {"keys", "objects", "settings"}
    checked = await admin.send("POST", f"/admin/v1/backups/{backup['id']}/verify", None)
    assert checked.status_code == 200 and checked.json()["ok"] is True, checked.text
    listed = (await admin.get("/admin/v1/backups", admin.viewer)).json()
    assert [(b["id"], b["verified_ok"]) for b in listed] == [(backup["id"], True)]
    # The CLI lists the same backup.
    done = await asyncio.to_thread(cli, admin.env, "backup", "list", "--json")
    assert [b["id"] for b in json.loads(done.stdout)] == [backup["id"]]
    error_of(await admin.send("POST", "/admin/v1/backups/no-such-backup/verify", None), 404)
    error_of(await admin.send("POST", "/admin/v1/backups/bad%20id!/verify", None), 400)
    # Resolve: a key the migration did not carry over is 404; the key is required.
    missing = await admin.get("/admin/v1/sunset/resolve?key=voice/agent/u/2026/01/02/03/x.mp3", admin.viewer)
    assert error_of(missing, 404)["param"] == "key"
    assert error_of(await admin.get("/admin/v1/sunset/resolve"), 400)["param"] == "key"
