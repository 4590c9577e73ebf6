"""Settings: the cores a run pins and where its servers are reached."""

from __future__ import annotations

import pytest

from bench.measure.settings import Settings, choose_pinning


def test_pinning_splits_the_cores_we_may_use():
    pinning = choose_pinning()
    if pinning is None:
        pytest.skip("one core: nothing to pin")
    server, generator = set(pinning["server_cpus"]), set(pinning["generator_cpus"])
    assert server and generator and not server & generator


def settings_for(**fields) -> Settings:
    return Settings("smoke", 1.0, 2.0, 1, 0, None, **fields)


@pytest.mark.parametrize(
    ("server_host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::", "http://[::1]:8000"),
        ("10.1.2.3", "http://10.1.2.3:8000"),
        ("localhost", "http://localhost:8000"),
    ],
)
def test_servers_bound_elsewhere_are_reached_where_they_listen(server_host, url):
    assert settings_for(server_host=server_host).base_url(8000) == url
