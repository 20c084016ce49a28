"""deploy/: the image, the compose fleet and the Kubernetes manifests, checked offline.

No Docker and no cluster here, so nothing is built or applied. What is checked instead:

* every Kubernetes manifest against the Kubernetes JSON schemas (kubernetes-validate, strict: an
  unknown or misspelt field fails), for the oldest and the newest version we claim;
* the manifests against each other: probes on the container port, Service/PDB selectors, HPA
  target, envFrom references, kustomization listing every manifest;
* every ``VOICE_V2_*`` / ``VOXSHIFT_*`` name in the ConfigMap, Secret, compose file, .env.example and
  Dockerfile against voxshift's real settings (``Settings`` is ``extra="ignore"``: a misspelt
  variable would be silently ignored in production), and their values through ``load_settings``;
* the compose file: structure (services, depends_on conditions, healthchecks, volumes, configs,
  interpolation), its backing servers against the ones the integration tests start, and - when the
  ``compose-spec`` package (a strict Compose parser) is installed - a strict parse;
* the Dockerfile, with a small instruction parser: non-root USER, HEALTHCHECK on /healthz, models
  installed at build time, EXPOSE equal to the containerPort, the entrypoint; the .dockerignore lets
  in everything the Dockerfile copies;
* deploy/bake-models.sh for real: the model it bakes stays valid after image layering rounds file
  mtimes to whole seconds, so a container never rewrites the (read-only) model folder;
* the replicas' compose environment for real, against the Redis, PostgreSQL and S3 servers the
  tests start: schema check and upgrade, two replicas ready with every dependency up, the tokens.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import kubernetes_validate
import pytest
import yaml

from tests.fixtures.redis_server import RedisServer
from tests.fixtures.s3_server import SeaweedS3
from tests.integration.server import RunningServer, start_server
from voxshift.config import Settings, env_name, load_settings
from voxshift.engines import models

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
ENV_EXAMPLE = DEPLOY / ".env.example"

# The oldest Kubernetes still commonly run, and the newest whose schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

SEED_VARIABLES = (
    "VOICE_V2_ENABLED",
    "VOICE_V2_ROLLOUT_PERCENTAGE",
    "VOICE_V2_REDIS_NAMESPACE",
    "VOICE_V2_MINIO_BUCKET",
    "VOICE_V2_FEATURES",
)
# The HTTP API's credentials: the admin API's bootstrap operator token and the voice API's key.
API_SECRETS = frozenset({"VOXSHIFT_ADMIN_TOKEN", "VOXSHIFT_VOICE_API_KEY"})
OUR_PREFIXES = ("VOICE_V2_", "VOXSHIFT_")

# Which compose image stands for which server the integration tests start (tests/fixtures/).
# The tests use SeaweedFS as their S3 server; the compose file uses MinIO, the seed's name for it.
BACKING_IMAGES = {"redis": "redis_server", "postgres": "postgres_server", "minio/minio": "s3_server"}
PROXY_IMAGES = ("nginx",)


# --- helpers ------------------------------------------------------------------------------------


def settings_env_names() -> frozenset[str]:
    return frozenset(env_name(name) for name in Settings.model_fields)


def unknown_settings(names: Any) -> list[str]:
    """The names that look like voxshift's (VOICE_V2_*, VOXSHIFT_*) but are no setting of it."""
    known = settings_env_names()
    return sorted(n for n in names if n.startswith(OUR_PREFIXES) and n not in known)


def k8s_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def k8s_docs() -> dict[str, dict[str, Any]]:
    """Every manifest by kind (each kind appears once)."""
    out: dict[str, dict[str, Any]] = {}
    for path in k8s_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                assert doc["kind"] not in out, f"{doc['kind']} defined twice"
                out[doc["kind"]] = doc
    return out


def read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            out[key.strip()] = value
    return out


_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<plain>[A-Za-z_]\w*))"
)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $VAR."""

    def sub(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("plain")
        op, value = match.group("op"), env.get(name)
        if op in (":-", "-"):
            unset = value is None or (op == ":-" and value == "")
            return match.group("arg") if unset else str(value)
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise KeyError(f"${{{name}}} is required ({match.group('arg')}) and not in .env.example")
            return value
        if value is None:
            raise KeyError(f"${name} has no value in .env.example and no default")
        return value

    return _VAR.sub(sub, text)


def compose_text() -> str:
    """compose.yaml as `docker compose` sees it with deploy/.env copied from .env.example."""
    return interpolate(COMPOSE.read_text(), read_env_file(ENV_EXAMPLE))


def compose() -> dict[str, Any]:
    data = yaml.safe_load(compose_text())  # safe_load resolves the YAML merge keys (<<)
    assert isinstance(data, dict)
    return data


def is_ours(service: dict[str, Any]) -> bool:
    """A service running voxshift's image (built from deploy/Dockerfile)."""
    build = service.get("build")
    return isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile"


def image_name(service: dict[str, Any]) -> str:
    image = str(service.get("image", ""))
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def clean_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    """The process environment holding exactly ``values`` among voxshift's variables."""
    for name in list(os.environ):
        if name.startswith((*OUR_PREFIXES, "AWS_")):
            monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


# --- Dockerfile parsing ---------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, backslash continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            word, _, rest = full.partition(" ")
            out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued instruction"
    return out


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1] :]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def env_instructions(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in stage:
        if word == "ENV":
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                assert sep, f"ENV without '=': {args!r} (use the KEY=VALUE form)"
                env[key] = value
    return env


def healthcheck_command(stage: list[tuple[str, str]]) -> list[str]:
    checks = [args for word, args in stage if word == "HEALTHCHECK"]
    assert len(checks) == 1, "exactly one HEALTHCHECK"
    _options, _, command = checks[0].partition("CMD")
    assert command, f"HEALTHCHECK without CMD: {checks[0]!r}"
    return exec_form(command.strip())


def _glob_regex(pattern: str) -> str:
    """A .dockerignore pattern as a regex over slash-separated paths (Go's filepath.Match + **)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def dockerignore_lets_in(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    included = True
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _glob_regex((pattern[1:] if negate else pattern).strip("/"))
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            included = negate
    return included


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


# --- Kubernetes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", k8s_files(), ids=lambda p: p.name)
def test_manifest_validates_against_the_kubernetes_schema(path: Path, version: str) -> None:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert docs, f"{path.name} is empty"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            pytest.fail(f"{path.name} ({doc.get('kind')}) at {where or '/'}: {exc.message} (k8s {version})")


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The check above is not vacuous: a typo in a probe is refused, not ignored."""
    deployment = k8s_docs()["Deployment"]
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]
    probe["pth"] = probe.pop("path")
    with pytest.raises(kubernetes_validate.ValidationError, match="pth"):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"].startswith("kustomize.config.k8s.io/")
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources)), "a resource listed twice"
    assert sorted(resources) == sorted(p.name for p in k8s_files())
    # Namespace-agnostic: kubectl's namespace (or -n, or an overlay) decides.
    assert "namespace" not in kustomization
    for doc in k8s_docs().values():
        assert "namespace" not in doc["metadata"], f"{doc['kind']} pins a namespace"
    # The image name the kustomization rewrites is the one the pods use.
    images = {image["name"] for image in kustomization.get("images", [])}
    for container in pod_containers():
        assert container["image"].split(":")[0] in images


def pod_specs() -> Iterator[dict[str, Any]]:
    docs = k8s_docs()
    yield docs["Deployment"]["spec"]["template"]["spec"]
    yield docs["Job"]["spec"]["template"]["spec"]


def pod_containers() -> Iterator[dict[str, Any]]:
    for spec in pod_specs():
        yield from spec.get("initContainers", [])
        yield from spec["containers"]


def main_container() -> dict[str, Any]:
    containers = k8s_docs()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def resolve_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container["ports"] if "name" in p}
    assert port in named, f"port {port!r} names no container port"
    return int(named[port])


def test_deployment_probes_hit_readyz_and_healthz_on_the_container_port() -> None:
    deployment = k8s_docs()["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    container = main_container()
    ports = {p["containerPort"] for p in container["ports"]}
    assert ports == {8000}
    probes = {
        kind: container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe", "startupProbe")
    }
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    for kind, probe in probes.items():
        assert resolve_port(container, probe["port"]) in ports, kind
    # The startup probe leaves room for a slow start (models, backends): at least two minutes.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    # serve listens where the probes look.
    args = container["args"]
    assert args[0] == "serve"
    assert int(args[args.index("--port") + 1]) in ports
    assert args[args.index("--host") + 1] == "0.0.0.0"


def test_pods_run_as_the_image_user_on_a_read_only_root() -> None:
    uid = dockerfile_user()
    for spec in pod_specs():
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == uid
        assert spec.get("automountServiceAccountToken") is False
        mounts_needed = {"/tmp", data_dir()}
        volumes = {v["name"] for v in spec["volumes"]}
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            csc = container["securityContext"]
            assert csc["readOnlyRootFilesystem"] is True
            assert csc["allowPrivilegeEscalation"] is False
            assert csc["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts_needed <= set(mounts), container["name"]
            assert set(mounts.values()) <= volumes
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(
                resources["limits"]
            ), container["name"]


def test_service_pdb_and_hpa_point_at_the_deployment() -> None:
    docs = k8s_docs()
    deployment, service, pdb, hpa = (
        docs["Deployment"],
        docs["Service"],
        docs["PodDisruptionBudget"],
        docs["HorizontalPodAutoscaler"],
    )
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    match_labels = deployment["spec"]["selector"]["matchLabels"]
    assert match_labels.items() <= pod_labels.items(), "the Deployment's selector must match its pods"

    selector = service["spec"]["selector"]
    assert selector and selector.items() <= pod_labels.items()
    # The db-upgrade Job's pods never receive traffic.
    job_labels = docs["Job"]["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= job_labels.items()
    container = main_container()
    for port in service["spec"]["ports"]:
        assert resolve_port(container, port["targetPort"]) == 8000

    assert pdb["apiVersion"] == "policy/v1"
    pdb_selector = pdb["spec"]["selector"]["matchLabels"]
    assert pdb_selector.items() <= pod_labels.items()
    assert not pdb_selector.items() <= job_labels.items()

    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"],
        "Deployment",
        deployment["metadata"]["name"],
    )
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"] == ["cpu"]
    assert "cpu" in container["resources"]["requests"], "CPU utilization is relative to the request"
    # Drains always leave replicas serving: the budget allows one disruption at the minimum size.
    minimum = hpa["spec"]["minReplicas"]
    assert minimum >= 2
    spec = pdb["spec"]
    if "maxUnavailable" in spec:
        assert 1 <= spec["maxUnavailable"] < minimum
    else:
        assert 1 <= spec["minAvailable"] < minimum


def test_pods_take_their_settings_from_the_configmap_and_the_secret() -> None:
    docs = k8s_docs()
    configmap, secret = docs["ConfigMap"]["metadata"]["name"], docs["Secret"]["metadata"]["name"]
    for container in pod_containers():
        refs = container["envFrom"]
        assert {r["configMapRef"]["name"] for r in refs if "configMapRef" in r} == {configmap}
        assert {r["secretRef"]["name"] for r in refs if "secretRef" in r} == {secret}
    job = docs["Job"]["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["db", "upgrade"]
    waits = docs["Deployment"]["spec"]["template"]["spec"]["initContainers"]
    assert any("voxshift db current --check" in " ".join(c.get("command", [])) for c in waits)


def configmap_env() -> dict[str, str]:
    return {str(k): str(v) for k, v in k8s_docs()["ConfigMap"]["data"].items()}


def secret_env() -> dict[str, str]:
    secret = k8s_docs()["Secret"]
    assert "data" not in secret, "placeholders go in stringData, readable"
    return {str(k): str(v) for k, v in secret["stringData"].items()}


def test_configmap_holds_the_seed_variables_with_voxshift_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    data = configmap_env()
    assert set(SEED_VARIABLES) <= set(data)
    clean_env(monkeypatch, {name: data[name] for name in SEED_VARIABLES})
    configured = load_settings()
    clean_env(monkeypatch, {})
    defaults = load_settings()
    for name in SEED_VARIABLES:
        field = name.lower()
        assert getattr(configured, field) == getattr(defaults, field), name
    assert configured.voice_v2_enabled is False and configured.voice_v2_rollout_percentage == 0


def test_every_variable_name_is_a_real_setting() -> None:
    names: dict[str, set[str]] = {
        "k8s ConfigMap": set(configmap_env()),
        "k8s Secret": set(secret_env()),
        ".env.example": set(read_env_file(ENV_EXAMPLE)),
        "Dockerfile ENV": set(env_instructions(dockerfile())),
    }
    for container in pod_containers():
        names[f"k8s {container['name']} env"] = {e["name"] for e in container.get("env", [])}
    for service_name, service in compose()["services"].items():
        names[f"compose {service_name}"] = set(compose_environment(service))
    problems = {where: unknown_settings(found) for where, found in names.items()}
    assert not {where: bad for where, bad in problems.items() if bad}
    # The API's credentials are provided wherever secrets are, and never in plain configuration.
    for where in ("k8s Secret", ".env.example"):
        assert names[where] >= API_SECRETS, where
    for where in ("k8s ConfigMap", "Dockerfile ENV"):
        assert not names[where] & API_SECRETS, where


def test_the_name_check_catches_a_typo() -> None:
    assert unknown_settings(["VOXSHIFT_STATE_ULR", "VOICE_V2_ROLLOUT_PERCENT", "VOXSHIFT_STATE_URL"]) == [
        "VOICE_V2_ROLLOUT_PERCENT",
        "VOXSHIFT_STATE_ULR",
    ]
    assert unknown_settings(["POSTGRES_PASSWORD", "VOICE_V2_ENABLED"]) == []


def test_configmap_and_secret_values_are_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**dockerfile_env(), **configmap_env(), **secret_env()}
    clean_env(monkeypatch, {k: v for k, v in env.items() if k.startswith(OUR_PREFIXES)})
    settings = load_settings()
    assert settings.admin_token and settings.voice_api_key
    assert settings.state_url and settings.state_url.startswith("redis://")
    assert settings.database_url and settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.storage_url and settings.storage_url.startswith("s3://")
    assert settings.signing_key and len(settings.signing_key.get_secret_value()) >= 32
    assert settings.storage_access_key and settings.storage_secret_key
    assert str(settings.data_dir) == data_dir()
    # The inference pools are sized to the CPU limit, not to the node's core count.
    limits = main_container()["resources"]["limits"]
    assert settings.workers == int(limits["cpu"])


# --- compose --------------------------------------------------------------------------------------


def test_compose_interpolates_from_env_example_alone() -> None:
    # Every ${VAR} either has a default or a value in .env.example (KeyError otherwise).
    compose_text()


def test_compose_parses_with_a_strict_compose_parser() -> None:
    compose_spec = pytest.importorskip(
        "compose_spec", reason="the compose-spec package (a strict Compose parser) is not installed"
    )
    parsed = compose_spec.PyOptions(apply_merge=True).from_yaml(compose_text())
    parsed.validate()
    assert sorted(parsed.service_names()) == sorted(compose()["services"])


def test_compose_structure() -> None:
    data = compose()
    services: dict[str, dict[str, Any]] = data["services"]
    declared_volumes = set(data.get("volumes") or {})
    declared_configs = data.get("configs") or {}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        assert "container_name" not in service, f"{name}: a fixed name prevents --scale"
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            condition = spec["condition"]
            target = services[dependency]
            if condition == "service_healthy":
                assert "healthcheck" in target or is_ours(target), f"{dependency} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert str(target.get("restart", "no")) == "no", f"{dependency} must be a one-shot"
            else:
                pytest.fail(f"{name} -> {dependency}: wait for health or completion, not {condition}")
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if ":" in str(volume) and source and not source.startswith((".", "/")):
                assert source in declared_volumes, f"{name}: volume {source} is not declared"
        for config in service.get("configs") or []:
            source = config["source"] if isinstance(config, dict) else config
            assert source in declared_configs, f"{name}: config {source} is not declared"
            assert (DEPLOY / declared_configs[source]["file"]).is_file()
        for env_file in service.get("env_file") or []:
            path = env_file if isinstance(env_file, str) else env_file["path"]
            assert path == ".env", "secrets come from deploy/.env (copied from .env.example)"
        if not is_ours(service) and image_name(service) not in PROXY_IMAGES:
            assert "healthcheck" in service, f"backing server {name} has no healthcheck"

    ours = {name: s for name, s in services.items() if is_ours(s)}
    servers = [name for name, s in ours.items() if s["command"][0] == "serve"]
    migrations = [name for name, s in ours.items() if s["command"] == ["db", "upgrade"]]
    assert len(servers) == 1 and len(migrations) == 1, ours
    server, migrate = services[servers[0]], services[migrations[0]]
    assert server["command"] == dockerfile_cmd()
    assert server["deploy"]["replicas"] >= 2
    assert "ports" not in server, "replicas publish no host port: the proxy is the front door"
    waits = server["depends_on"]
    assert waits[migrations[0]]["condition"] == "service_completed_successfully"
    backing = [name for name, s in services.items() if not is_ours(s) and image_name(s) not in PROXY_IMAGES]
    for name in backing:
        assert waits[name]["condition"] == "service_healthy", name
    assert str(migrate.get("restart")) == "no"

    proxies = [s for s in services.values() if image_name(s) in PROXY_IMAGES]
    assert len(proxies) == 1
    proxy = proxies[0]
    assert proxy["ports"], "the proxy publishes the fleet's port"
    conf = (DEPLOY / declared_configs[proxy["configs"][0]["source"]]["file"]).read_text()
    assert re.search(rf"server\s+{servers[0]}:8000\s+resolve;", conf), "nginx must re-resolve the replicas"


def test_compose_backing_servers_are_the_ones_the_integration_tests_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conftest = ast.parse((ROOT / "tests" / "conftest.py").read_text())
    plugins: list[str] = []
    for node in conftest.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets
        ):
            plugins = [str(ast.literal_eval(e)) for e in node.value.elts]  # type: ignore[attr-defined]
    fixtures = {p.rsplit(".", 1)[-1] for p in plugins if p.startswith("tests.fixtures.")}
    assert fixtures == {"redis_server", "postgres_server", "s3_server"}
    for fixture in fixtures:
        assert (ROOT / "tests" / "fixtures" / f"{fixture}.py").is_file()

    services = compose()["services"]
    backing = {
        name: image_name(s)
        for name, s in services.items()
        if not is_ours(s) and image_name(s) not in PROXY_IMAGES
    }
    unknown = {name: image for name, image in backing.items() if image not in BACKING_IMAGES}
    assert not unknown, f"servers no integration test starts: {unknown}"
    assert sorted(BACKING_IMAGES[image] for image in backing.values()) == sorted(fixtures)

    # And voxshift is pointed at exactly those servers.
    by_image = {image: name for name, image in backing.items()}
    server = next(s for s in services.values() if is_ours(s) and s["command"][0] == "serve")
    env = {**read_env_file(ENV_EXAMPLE), **compose_environment(server)}
    clean_env(monkeypatch, {k: v for k, v in env.items() if k.startswith(OUR_PREFIXES)})
    settings = load_settings()
    assert urlsplit(settings.state_url or "").hostname == by_image["redis"]
    assert urlsplit(settings.database_url or "").hostname == by_image["postgres"]
    storage = urlsplit(settings.storage_url or "")
    assert storage.scheme == "s3"
    assert urlsplit(parse_qs(storage.query)["endpoint"][0]).hostname == by_image["minio/minio"]
    minio_env = compose_environment(services[by_image["minio/minio"]])
    assert settings.storage_access_key and settings.storage_secret_key
    assert settings.storage_access_key.get_secret_value() == minio_env["MINIO_ROOT_USER"]
    assert settings.storage_secret_key.get_secret_value() == minio_env["MINIO_ROOT_PASSWORD"]
    postgres_env = compose_environment(services[by_image["postgres"]])
    assert urlsplit(settings.database_url or "").password == postgres_env["POSTGRES_PASSWORD"]
    # The seed's variables are set for the fleet too, with the same values as in the ConfigMap.
    for name in SEED_VARIABLES:
        assert env[name] == configmap_env()[name], name


# --- Dockerfile -----------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    return final_stage(dockerfile_instructions(DOCKERFILE.read_text()))


def dockerfile_env() -> dict[str, str]:
    return env_instructions(dockerfile())


def data_dir() -> str:
    return dockerfile_env()["VOXSHIFT_DATA_DIR"]


def dockerfile_user() -> int:
    users = [args for word, args in dockerfile() if word == "USER"]
    assert users, "no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a numeric uid, so that Kubernetes' runAsNonRoot can verify it"
    return int(uid)


def dockerfile_cmd() -> list[str]:
    cmds = [exec_form(args) for word, args in dockerfile() if word == "CMD"]
    assert len(cmds) == 1
    return cmds[0]


def test_dockerfile_base_matches_requires_python() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    minimum = re.fullmatch(r">=\s*(\d+\.\d+)", requires)
    assert minimum, requires
    for word, args in dockerfile_instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            image = args.split()[0]
            assert re.fullmatch(rf"python:{re.escape(minimum.group(1))}-slim(-\w+)?", image), image


def test_dockerfile_runs_as_a_non_root_user_before_its_entrypoint() -> None:
    stage = dockerfile()
    words = [word for word, _ in stage]
    user_at = max(i for i, w in enumerate(words) if w == "USER")
    for word in ("ENTRYPOINT", "CMD"):
        assert words.index(word) > user_at, f"{word} before USER"
    assert dockerfile_user() not in (0,) and stage[user_at][1].split(":")[0] not in ("root", "0")
    # Nothing runs as root after the switch.
    assert "RUN" not in words[user_at:]


def test_dockerfile_bakes_models_at_build_time() -> None:
    stage = dockerfile()
    env = env_instructions(stage)
    model_dir = env["VOXSHIFT_WHISPER_MODEL_DIR"]
    # Outside the data dir: a volume mounted there must not hide the baked model.
    assert not Path(model_dir).is_relative_to(env["VOXSHIFT_DATA_DIR"])
    words = [word for word, _ in stage]
    runs = [(i, args) for i, (word, args) in enumerate(stage) if word == "RUN"]
    bake = [i for i, args in runs if "voxshift-bake-models" in args or "models install" in args]
    assert bake, "no RUN installs the models"
    env_at = max(
        i for i, (word, args) in enumerate(stage) if word == "ENV" and "VOXSHIFT_WHISPER_MODEL_DIR" in args
    )
    assert env_at < bake[0] < words.index("USER"), "models installed with the runtime's model dir, as root"
    copies = [args.split() for word, args in stage if word == "COPY"]
    assert any(parts[-1] == "/usr/local/bin/voxshift-bake-models" for parts in copies)
    assert "models install" in (DEPLOY / "bake-models.sh").read_text()
    assert any("espeak-ng" in args for _, args in runs), "espeak-ng comes from apt"
    assert not any("chromium" in args for _, args in runs), "the image needs no browser"


def test_dockerfile_healthcheck_expose_volume_and_entrypoint() -> None:
    stage = dockerfile()
    check = " ".join(healthcheck_command(stage))
    exposed = [args.split() for word, args in stage if word == "EXPOSE"]
    assert exposed == [["8000"]]
    assert "http://127.0.0.1:8000/healthz" in check
    assert {p["containerPort"] for p in main_container()["ports"]} == {int(exposed[0][0])}
    entrypoint = [exec_form(args) for word, args in stage if word == "ENTRYPOINT"]
    assert entrypoint == [["voxshift"]]
    assert dockerfile_cmd() == ["serve", "--host", "0.0.0.0", "--port", exposed[0][0]]
    assert main_container()["args"] == dockerfile_cmd()
    volumes = [exec_form(args) for word, args in stage if word == "VOLUME"]
    assert volumes == [[data_dir()]]
    # The data dir is owned by the service user, before VOLUME freezes it.
    volume_at = next(i for i, (word, _) in enumerate(stage) if word == "VOLUME")
    assert any(
        word == "RUN" and f"chown {dockerfile_user()}" in args and data_dir() in args
        for word, args in stage[:volume_at]
    )


def test_dockerignore_lets_in_what_the_dockerfile_copies_and_keeps_secrets_out() -> None:
    patterns = dockerignore_patterns()
    for word, args in dockerfile_instructions(DOCKERFILE.read_text()):
        if word == "COPY" and "--from=" not in args:
            *sources, _dest = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert dockerignore_lets_in(source.rstrip("/"), patterns), f"{source} is ignored"
    for private in (".env", "deploy/.env", ".git", ".venv", "tests", "src/voxshift/__pycache__"):
        assert not dockerignore_lets_in(private, patterns), private
    assert dockerignore_lets_in("src/voxshift/config.py", patterns)
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert dockerignore_lets_in(readme, patterns), "pip install . needs the readme"


def test_baked_model_stays_valid_after_layering(tmp_path: Path) -> None:
    """deploy/bake-models.sh, run for real: after image layers round mtimes to whole seconds, a
    container finds the model installed and writes nothing into its folder."""
    if not models.whisper_installable():
        pytest.skip("the Whisper model packages are not installed")
    target = tmp_path / "models" / "whisper-base"
    env = {
        **os.environ,
        "VOXSHIFT_WHISPER_MODEL_DIR": str(target),
        "VOXSHIFT_DATA_DIR": str(tmp_path / "data"),
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    for name in list(env):
        if name.startswith(OUR_PREFIXES) and name not in ("VOXSHIFT_WHISPER_MODEL_DIR", "VOXSHIFT_DATA_DIR"):
            del env[name]
    done = subprocess.run(
        ["sh", str(DEPLOY / "bake-models.sh")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr + done.stdout

    def layer(folder: Path) -> None:  # what a layer tarball that keeps whole seconds does
        for path in [folder, *folder.iterdir()]:
            stat = path.stat()
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns // 10**9 * 10**9))

    def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
        return {p.name: (p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_mode) for p in folder.iterdir()}

    layer(target)
    before = snapshot(target)
    assert all(mode & 0o004 for _, _, mode in before.values()), "the service user must read the model"
    settings = Settings(whisper_model_dir=target, data_dir=tmp_path / "data")
    assert models.prepare_whisper_dir(settings) == target
    assert "already installed" in models.install_whisper_model(target)
    assert snapshot(target) == before

    # Without the rounding step the marker would not survive layering (the step is needed).
    plain = tmp_path / "plain"
    models.install_whisper_model(plain)
    if (plain / "model.bin").stat().st_mtime_ns % 10**9:
        layer(plain)
        assert not models._marker_ok(plain, models.WHISPER_SHA256)


# --- the fleet's environment, run ------------------------------------------------------------------


def voxshift_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(OUR_PREFIXES)}
    return subprocess.run(
        [sys.executable, "-m", "voxshift.cli", *args],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_compose_environment_runs_a_fleet_on_the_test_servers(
    tmp_path: Path,
    clean_redis: RedisServer,
    postgres_url: str,
    s3_server: SeaweedS3,
    whisper_model_dir: Path,
) -> None:
    """The replicas' environment from compose.yaml (+ .env.example), with the compose hostnames
    pointed at the servers the tests start: the schema check the pods' init container loops on,
    `db upgrade`, two replicas ready with every dependency up, the bucket created by voxshift itself,
    and the tokens of the Secret in force."""
    services = compose()["services"]
    server = next(s for s in services.values() if is_ours(s) and s["command"][0] == "serve")
    merged = {**read_env_file(ENV_EXAMPLE), **compose_environment(server)}
    env = {k: v for k, v in merged.items() if k.startswith(OUR_PREFIXES)}
    endpoint = parse_qs(urlsplit(env["VOXSHIFT_STORAGE_URL"]).query)["endpoint"][0]
    env |= {
        "VOXSHIFT_STATE_URL": clean_redis.url,
        "VOXSHIFT_DATABASE_URL": postgres_url,
        "VOXSHIFT_STORAGE_URL": env["VOXSHIFT_STORAGE_URL"].replace(endpoint, s3_server.endpoint_url),
        "VOXSHIFT_STORAGE_ACCESS_KEY": s3_server.access_key,
        "VOXSHIFT_STORAGE_SECRET_KEY": s3_server.secret_key,
        # Test-sized: the session's model folder, one worker per pool.
        "VOXSHIFT_WHISPER_MODEL_DIR": str(whisper_model_dir),
        "VOXSHIFT_WORKERS": "1",
        "VOXSHIFT_LEGACY_WORKERS": "1",
        "VOXSHIFT_DATA_DIR": str(tmp_path / "cli"),
    }

    before = voxshift_cli(env, "db", "current", "--check")
    assert before.returncode == 1, before.stdout + before.stderr  # the init container keeps waiting
    upgrade = voxshift_cli(env, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    after = voxshift_cli(env, "db", "current", "--check")
    assert after.returncode == 0 and "(head)" in after.stdout, after.stdout + after.stderr

    replicas: list[RunningServer] = []
    try:
        for i in range(2):
            replicas.append(start_server(tmp_path / f"replica{i}", env, all_on_v2=False))
        for replica in replicas:
            ready = httpx.get(f"{replica.url}/readyz", timeout=5).json()
            assert ready["status"] == "ready", ready
            assert {name: dep["up"] for name, dep in ready["dependencies"].items()} == {
                "state_store": True,
                "object_storage": True,
                "database": True,
            }
        # The voice key from the Secret guards /v1 and /v2; the admin token opens /admin/v1.
        url = replicas[0].url
        assert httpx.get(f"{url}/v1/models", timeout=5).status_code == 401
        voice = {"Authorization": f"Bearer {env['VOXSHIFT_VOICE_API_KEY']}"}
        assert httpx.get(f"{url}/v1/models", headers=voice, timeout=5).status_code == 200
        admin = {"Authorization": f"Bearer {env['VOXSHIFT_ADMIN_TOKEN']}"}
        assert httpx.get(f"{replicas[1].url}/admin/v1/flags", headers=admin, timeout=5).status_code == 200
    finally:
        for replica in replicas:
            replica.stop()
    buckets = {b["Name"] for b in s3_server.client().list_buckets()["Buckets"]}
    assert env["VOICE_V2_MINIO_BUCKET"] in buckets
