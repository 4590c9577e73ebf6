"""bench.apps.rawapp: the floor reference answers like bench.apps.app, and nothing else."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client

from bench.apps.app import app as framework_app
from bench.apps.rawapp import app as raw_app


@pytest.fixture
def raw():
    return Client(raw_app)


def test_plaintext(raw):
    response = raw.get("/plaintext")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Length"] == "13"
    assert response.data == b"Hello, World!"


def test_json(raw):
    response = raw.get("/json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.data)
    assert json.loads(response.data) == {"message": "Hello, World!"}


@pytest.mark.parametrize("path", ["/plaintext", "/json"])
def test_same_content_as_the_framework_app(raw, path):
    expected = Client(framework_app).get(path)
    actual = raw.get(path)
    assert actual.headers["Content-Type"] == expected.headers["Content-Type"]
    if path == "/json":  # serialisers may differ in whitespace only
        assert json.loads(actual.data) == json.loads(expected.data)
    else:
        assert actual.data == expected.data


@pytest.mark.parametrize("path", ["/", "/plaintext/", "/PLAINTEXT", "/fortunes", "/json?x"])
def test_anything_else_is_a_404(raw, path):
    response = raw.get(path)
    expected_status = 200 if path == "/json?x" else 404  # the query string is not the path
    assert response.status_code == expected_status


def test_missing_path_info_is_a_404():
    statuses = []
    body = raw_app({}, lambda status, headers: statuses.append(status))
    assert statuses == ["404 Not Found"]
    assert b"".join(body) == b"Not Found"
