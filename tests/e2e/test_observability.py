"""The shipped Grafana dashboard and Prometheus alert rules (deploy/) against a running proxy's
/metrics (docs/operations.md, "Dashboard and alerts"): every metric they query exists, every label
they match, group by or list exists on that metric, and every label value they match is one the
proxy writes. The rules pass `promtool check rules`, and the exposition `promtool check metrics`.
Loopback only."""

import json
import os
import re
import shutil
import subprocess
import urllib.request

import pytest

from conftest import ROOT, TENANTS, client

DASHBOARD = ROOT / "deploy" / "grafana" / "swf-warden.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
# Labels Prometheus adds to every series it scrapes.
TARGET_LABELS = {"instance", "job"}
# Decisions this test's traffic does not produce (no shadow mode, no STS session issued here);
# src/metrics.rs's `every_decision_is_counted_under_its_own_label` shows each has its label.
UNPRODUCED_DECISIONS = {"wouldDeny", "issued"}
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def promtool():
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return path


def queries():
    """Every PromQL expression the dashboard and the rules hold, with where it is."""
    found = []
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append((f"variable {variable['name']}", variable["definition"]))
    text = ALERTS.read_text()
    for name, expr in re.findall(r"- alert: (\S+)\n\s+expr: (\|\n(?:\s{10,}.*\n)+|.*\n)", text):
        found.append((f"alert {name}", expr.lstrip("|")))
    return found


def scrape(admin):
    """The families of /metrics: name → (type, {label: {values}}, sample names)."""
    text = urllib.request.urlopen(f"{admin}/metrics", timeout=10).read().decode()
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            families[name] = (kind, {}, set())
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series = line.rsplit(" ", 1)[0]
        name, _, labels = series.partition("{")
        family = next(f for f in (name, re.sub(r"_(bucket|count|sum)$", "", name)) if f in families)
        families[family][2].add(name)
        for label, _, value in MATCHER.findall(labels):
            families[family][1].setdefault(label, set()).add(value)
    return text, families


def drive(proxy, domains):
    """Traffic that makes every decision the dashboard shows appear on /metrics."""
    a = client(proxy, "a")
    a.describe_domain(name=TENANTS["a"]["domain"])  # allowed
    with pytest.raises(a.exceptions.OperationNotPermittedFault):  # implicit deny
        a.describe_domain(name=TENANTS["b"]["domain"])
    with pytest.raises(a.exceptions.OperationNotPermittedFault):  # explicit deny (guardrails)
        a.terminate_workflow_execution(domain=TENANTS["a"]["domain"], workflowId="w")
    for _ in range(2):  # the "counting" quota: one call, then throttled
        try:
            a.count_pending_decision_tasks(domain=TENANTS["a"]["domain"], taskList={"name": "t"})
        except Exception:
            pass
    wrong = client(proxy, "b")
    wrong._request_signer._credentials.secret_key = "not-the-secret"
    with pytest.raises(Exception):  # authentication failure
        wrong.describe_domain(name=TENANTS["b"]["domain"])


def metric_names(expr):
    return set(re.findall(r"\b(swf_warden_[a-z_]+)\b", expr))


def family_of(name, families):
    for candidate in (name, re.sub(r"_(bucket|count|sum)$", "", name)):
        if candidate in families:
            return candidate
    return None


def test_every_metric_and_label_the_dashboard_and_alerts_use_is_served(proxy, domains):
    drive(proxy, domains)
    _, families = scrape(proxy["admin"])
    checked = set()
    for where, expr in queries():
        names = metric_names(expr)
        assert names, f"{where} queries no swf-warden metric: {expr}"
        for name in names:
            family = family_of(name, families)
            assert family, f"{where}: {name} is not on /metrics"
            assert name in families[family][2], f"{where}: no {name} sample on /metrics"
            checked.add(family)
        # Matchers: on the metric they follow.
        for name, body in re.findall(r"\b(swf_warden_[a-z_]+)\{([^}]*)\}", expr):
            labels = families[family_of(name, families)][1]
            for label, op, value in MATCHER.findall(body):
                if label in TARGET_LABELS:
                    continue
                assert label in labels, f"{where}: {name} has no label {label}"
                if op in ("=", "=~"):
                    known = labels[label] | (UNPRODUCED_DECISIONS if label == "decision" else set())
                    for alternative in value.split("|"):
                        assert alternative in known, f"{where}: {name}{{{label}}} is never {alternative!r}"
        # Grouping and label_values: on every metric of the expression (le on histograms).
        grouped = [g for clause in re.findall(r"\bby \(([^)]*)\)", expr) for g in clause.split(",")]
        grouped += re.findall(r"label_values\(\s*swf_warden_[a-z_]+\s*,\s*(\w+)\)", expr)
        for label in (g.strip() for g in grouped):
            if label in TARGET_LABELS:
                continue
            owners = [n for n in names if label in families[family_of(n, families)][1]
                      or (label == "le" and n.endswith("_bucket"))]
            assert owners, f"{where}: no metric of {sorted(names)} has the label {label}"
    # The dashboard covers what SPEC names: decisions and principals, proxy and upstream
    # time, throttles, audit health, upstream credentials, connections and slots.
    for family in ("swf_warden_requests_total", "swf_warden_principal_requests_total",
                   "swf_warden_proxy_duration_seconds", "swf_warden_upstream_duration_seconds",
                   "swf_warden_throttled_total", "swf_warden_audit_write_failures_total",
                   "swf_warden_upstream_credentials_expiry_seconds", "swf_warden_open_connections",
                   "swf_warden_max_connections"):
        assert family in checked, f"nothing shows {family}"


def test_the_rules_and_the_exposition_pass_promtool(proxy):
    tool = promtool()
    rules = subprocess.run([tool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 11 rules found" in rules.stdout + rules.stderr
    # The rules' behaviour on sample series: a new refusal spike fires, a usual rate does not,
    # slots near full and an audit write failure fire.
    behaviour = subprocess.run([tool, "test", "rules", str(ROOT / "tests" / "prometheus" / "alerts_test.yaml")],
                               capture_output=True, text=True, timeout=60)
    assert behaviour.returncode == 0, behaviour.stdout + behaviour.stderr
    text, _ = scrape(proxy["admin"])
    metrics = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert metrics.returncode == 0, metrics.stdout + metrics.stderr
