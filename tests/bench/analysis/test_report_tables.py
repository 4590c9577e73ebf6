"""The report's tables: server columns, the run's workload and its CPU budget in words."""

from __future__ import annotations

from bench.analysis import report_tables


def test_a_target_without_its_pid_reads_not_measured_in_the_server_columns():
    record = {"server": "target", "server_measured": False, "rps": 120.0, "server_cpu_pct": None,
              "server_rss_mb": None, "flags": []}  # fmt: skip
    assert report_tables.table_text(record, "server_cpu_pct") == "not measured"
    assert report_tables.table_text(record, "server_rss_mb") == "not measured"
    assert report_tables.table_text(record, "rps") == "120"
    assert report_tables.table_text({**record, "server_measured": True}, "server_cpu_pct") == "–"


def test_a_users_workload_is_named_in_the_run_table():
    rows = report_tables.workload_rows({
        "app": "mypkg.wsgi:app", "scenario_file": "/x/my.py", "scenario_file_sha256": "ab" * 32,
        "server_host": "0.0.0.0", "locust_master_bind": "0.0.0.0:5557", "expect_workers": 3,
    })  # fmt: skip
    assert rows["app"] == "mypkg.wsgi:app"
    assert rows["scenario file"] == f"/x/my.py (sha256 {'ab' * 32})"
    assert rows["servers bound to"] == "0.0.0.0"
    assert "3 workers on other hosts" in rows["generator"]
    target = report_tables.workload_rows({"target": {"url": "http://h:1", "pid": None}})
    assert target["app"] is None and "not measured" in target["target"]
    assert report_tables.workload_rows({"server_host": "127.0.0.1"}) == {"app": None}


def test_a_run_without_a_writable_cgroup_says_why():
    sentence = report_tables.budget_sentence({"cpus": None, "source": "unavailable",
                                       "reason": "no cgroups here"})  # fmt: skip
    assert sentence.startswith("No CPU budget (no cgroups here)")
    assert report_tables.budget_sentence(None) == ""
