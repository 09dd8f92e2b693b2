"""The shipped alert rules and dashboard: promtool accepts and unit-tests the rules, every
metric they and the dashboard query is one /metrics exposes (present before any traffic,
tests/integration/test_metrics.py), and every alert has its runbook entry in deploy/README.md."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.repo.test_deploy import DEPLOY, DEPLOY_README, metric_families

RULES = DEPLOY / "prometheus" / "alerts.yaml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts_test.yaml"
DASHBOARD = DEPLOY / "grafana" / "scim-service.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing (apt-get install prometheus; .ci/run does)"
)


def alerts() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text("utf-8"))
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def exposed() -> set[str]:
    """Series names /metrics exposes (histogram and counter suffixes included)."""
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_created",)}
    families = metric_families()
    return set(families) | {n + s for n, kind in families.items() for s in suffixes.get(kind, ())}


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(?:scim|process|python)_[a-z0-9_]*[a-z0-9]\b", expr))


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    assert PROMTOOL is not None
    out = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    assert PROMTOOL is not None
    out = subprocess.run(
        [PROMTOOL, "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        cwd=RULE_TESTS.parent,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_cover_the_operators_signals() -> None:
    """At least the issue's signals, each alert with a unit test, and only exposed metrics."""
    rules = alerts()
    names = [str(r["alert"]) for r in rules]
    assert len(names) >= 6 and len(set(names)) == len(names)
    joined = " ".join(str(r["expr"]) for r in rules)
    for metric in (
        "scim_outbox_oldest_pending_age_seconds",
        "scim_outbox_dead_letters",
        "scim_deprovision_guard_tripped_organizations",
        "scim_publisher_heartbeat_timestamp_seconds",
        "scim_event_deliveries_total",
        "scim_http_requests_total",
        "scim_rejected_requests_total",
        "scim_tokens_expiring_soon",
        "scim_event_loop_lag_seconds",
    ):
        assert metric in joined, metric
    known = exposed()
    for rule in rules:
        expr = str(rule["expr"])
        assert metrics_in(expr) <= known, (rule["alert"], metrics_in(expr) - known)
        # The outbox gauges are database-wide: every replica reports the same value.
        assert not re.search(r"sum[^(]*\(\s*scim_outbox_", expr), rule["alert"]
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text("utf-8")))
    assert set(names) <= tested, set(names) - tested


def test_every_alert_has_a_runbook() -> None:
    """deploy/README.md has a `### AlertName` section per alert, which the rule links."""
    readme = DEPLOY_README.read_text("utf-8")
    headings = set(re.findall(r"^### (Scim\w+)$", readme, re.M))
    for rule in alerts():
        name = str(rule["alert"])
        assert name in headings, f"no runbook section for {name}"
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["runbook"] == f"deploy/README.md#{name.lower()}"


def test_dashboard_queries_only_exposed_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    known = exposed()
    used: set[str] = set()
    for expr in exprs:
        assert metrics_in(expr) <= known, (expr, metrics_in(expr) - known)
        used |= metrics_in(expr)
    # The dashboard shows every scim_* family but the rarely useful unconfigured-sink gauge.
    scim = {n for n in metric_families() if n.startswith("scim_")}
    assert scim - {m.removesuffix("_bucket") for m in used} <= {
        "scim_outbox_unconfigured_sink_events"
    }
