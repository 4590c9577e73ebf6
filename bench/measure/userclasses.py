"""List the user classes of a locustfile, as Locust itself finds them, in a process of its own.

``python -m bench.measure.userclasses FILE`` prints one JSON list: per user class its name, its
``probe`` attribute and the first line of its docstring. The runner calls it as a subprocess, so
it never imports Locust (which monkey-patches the standard library with gevent) nor the user's
code itself. A file that fails to import is one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys


def describe(name: str, user_class: type) -> dict:
    """What the runner needs of a user class; ``name`` is how Locust's command line selects it."""
    doc = (user_class.__doc__ or "").strip()
    return {
        "class": name,
        "probe": getattr(user_class, "probe", None),
        "description": doc.splitlines()[0] if doc else "",
    }


def main(argv: list[str]) -> int:
    from locust.util.load_locustfile import load_locustfile

    try:
        user_classes, _shapes = load_locustfile(argv[0])
    except Exception as error:  # the user's code: any exception means "does not import"
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 2
    print(json.dumps([describe(name, cls) for name, cls in user_classes.items()], default=repr))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
