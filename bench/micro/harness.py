"""What every micro case shares: how it names its references, and how it calls a WSGI app.

A case is a pytest test parametrized by *subject* (``framework`` or a reference such as
``werkzeug``, ``flask``, ``raw``). Its references are the same test with another subject, so
``test_full_cycle_plaintext[framework]`` is compared with ``test_full_cycle_plaintext[werkzeug]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

#: the subject under test; every other subject is a reference
FRAMEWORK = "framework"


def describe(
    benchmark,
    group: str,
    compare_to: Mapping[str, tuple[str, ...]],
    under_test: str = FRAMEWORK,
) -> None:
    """Label a case: its group, and the subjects it is compared against (main reference first),
    looked up by its own subject in ``compare_to``.

    A subject missing from ``compare_to`` is its group's main reference for this operation;
    ``under_test`` is the group's own code (``framework``, or ``servers`` for the HTTP layer).
    """
    base, subject = benchmark.name.removesuffix("]").split("[")
    names = [f"{base}[{other}]" for other in compare_to.get(subject, ())]
    benchmark.group = group
    benchmark.extra_info.update(
        subject=subject,
        is_reference=subject != under_test,
        reference=names[0] if names else None,
        compare_to=names,
    )


def call_wsgi(app: Callable, environ: dict) -> tuple[str, list[tuple[str, str]], bytes]:
    """One request the way a server makes it: a fresh environ copy, the body consumed, closed."""
    started = []
    body = app(
        environ.copy(), lambda status, headers, exc_info=None: started.append((status, headers))
    )
    try:
        data = b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    status, headers = started[0]
    return status, headers, data
