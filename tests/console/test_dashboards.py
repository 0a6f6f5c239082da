"""The Grafana dashboard and alert rules shipped in docs/monitoring/ use only metrics a
broker exports."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from odradek.testing import Broker

DOCS = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
METRIC = re.compile(r"\b(?:kafka|odradek)_[a-z0-9_]+\b")
SUFFIXES = ("", "_total", "_bucket", "_sum", "_count")


def _exported() -> set[str]:
    """Every series name a broker's /metrics can carry (with each family's suffixes)."""
    with Broker(config={"console.listeners": "http://127.0.0.1:0"}) as broker:
        assert broker.console_url is not None
        with urllib.request.urlopen(broker.console_url + "/metrics", timeout=30) as response:
            text = response.read().decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES}
    return names


def test_dashboard_and_alerts_name_only_exported_metrics() -> None:
    """Each query of the dashboard's panels and each alert expression refers only to
    metric names found on a running broker's /metrics; the dashboard is valid JSON with
    at least one query per panel."""
    exported = _exported()
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert all(p["targets"] for p in dashboard["panels"])
    used = {name for query in queries for name in METRIC.findall(query)}
    alerts = (DOCS / "alerts.yml").read_text()
    used |= set(METRIC.findall(alerts))
    assert "kafka_consumergroup_lag" in used and "odradek_log_dir_free_bytes" in used
    assert used - exported == set()
