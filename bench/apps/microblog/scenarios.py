"""Locust scenarios for the microblog: a plain Locust locustfile, measured by ``bench``.

    python -m bench run --app bench.apps.microblog:app \\
        --scenarios bench/apps/microblog/scenarios.py --profile smoke

Each user class is one scenario of the run (``BloggerUser`` → ``blogger``). ``probe`` is the
request the runner checks before loading a server: it must answer 200 with the marker. Every
request goes through ``bench.checks.fetch``, so a wrong status or a missing marker counts
as a failed request. The same file runs with plain ``locust -f`` too.
"""

from __future__ import annotations

import uuid

from locust import FastHttpUser, constant, task

from bench.checks import fetch

#: what every timeline page shows
TIMELINE = "Public timeline"
PASSWORD = "correct horse"


class BloggerUser(FastHttpUser):
    """A member: registers and logs in once, then mostly reads, sometimes posts."""

    wait_time = constant(0)
    probe = ("/", TIMELINE)

    def on_start(self) -> None:
        # a fresh name per user and per run: the database outlives the cells
        self.username = "u" + uuid.uuid4().hex[:16]
        form = {"username": self.username, "password": PASSWORD, "password2": PASSWORD}
        fetch(self.client, "/register", "successfully registered", method="POST", data=form)
        form = {"username": self.username, "password": PASSWORD}
        fetch(self.client, "/login", "You were logged in", method="POST", data=form)

    @task(5)
    def read_timeline(self) -> None:
        fetch(self.client, "/", TIMELINE)

    @task(2)
    def read_own_page(self) -> None:
        # the page title, as the template's autoescape writes it
        fetch(self.client, f"/{self.username}", f"{self.username}&#39;s messages")

    @task(1)
    def post(self) -> None:
        text = f"hello from {self.username}"
        fetch(self.client, "/add_message", "Your message was recorded", method="POST",
              data={"text": text})  # fmt: skip


class ReaderUser(FastHttpUser):
    """A visitor who never logs in: reads the public timeline."""

    wait_time = constant(0)
    probe = ("/", TIMELINE)

    @task
    def read_timeline(self) -> None:
        fetch(self.client, "/", TIMELINE)
