"""Response checks for locustfiles: a wrong status or a missing body marker counts as an error.

A server that answers errors fast must not look fast, so every request of a scenario should check
what came back. These helpers work on Locust's ``catch_response`` responses (``HttpUser`` and
``FastHttpUser`` alike) and import nothing from Locust, so a user's scenario file can use them:

    from bench.checks import fetch

    class VisitorUser(FastHttpUser):
        probe = ("/", "<h1>")

        @task
        def timeline(self):
            fetch(self.client, "/", marker="<h1>")
"""

from __future__ import annotations


def check(response, status: int = 200, marker: str | None = None) -> str | None:
    """Mark ``response`` failed unless it has ``status`` and ``marker`` in its body.

    ``response`` comes from ``client.request(..., catch_response=True)`` inside its ``with``
    block. Returns the body text when the response passed, None when it was marked failed.
    """
    text = response.text or ""
    if response.status_code != status:
        response.failure(f"status {response.status_code}")
    elif marker is not None and marker not in text:
        response.failure(f"body lacks {marker!r}")
    else:
        return text
    return None


def fetch(
    client, path: str, marker: str | None = None, status: int = 200, method: str = "GET", **kwargs
) -> str | None:
    """One checked request: ``client.request(method, path, **kwargs)`` through :func:`check`.

    Both Locust clients follow redirects, so ``status`` and ``marker`` are checked on the page
    a redirect leads to; pass ``allow_redirects=False`` to check the redirect itself.
    """
    with client.request(method, path, catch_response=True, **kwargs) as response:
        return check(response, status, marker)
