"""The session: a dict kept in a signed cookie (itsdangerous), opened lazily, saved only if changed.

A cookie that does not verify (tampered, truncated, garbage, signed with another key) gives an
empty session: a client must never be able to turn its own cookie into a 500.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.datastructures import CallbackDict

if TYPE_CHECKING:
    from werkzeug.wrappers import Request, Response

NO_SECRET_KEY = (
    "The session is unavailable because no secret key was set. Set app.secret_key to something "
    "unique and secret (e.g. os.urandom(24)) before writing to the session."
)


class SecureCookieSession(CallbackDict):
    """The session dict. `modified` turns True on any write, which is what triggers Set-Cookie.

    Only writes through the dict are seen: after mutating a nested value in place, set
    ``session.modified = True`` yourself.
    """

    def __init__(self, initial: dict[str, Any] | None = None) -> None:
        def mark_modified(session: SecureCookieSession) -> None:
            session.modified = True

        super().__init__(initial, mark_modified)
        #: True once the session was written to during this request
        self.modified = False


class NullSession(SecureCookieSession):
    """The session of an app without a secret key: reads see an empty dict, writes raise."""

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(NO_SECRET_KEY)

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = __ior__ = _fail


@functools.lru_cache(maxsize=8)
def cookie_serializer(secret_key: str | bytes) -> URLSafeTimedSerializer:
    """The signer for a key, built once per key (the key may be set after the app is created)."""
    return URLSafeTimedSerializer(secret_key, salt="framework.session")


def open_session(secret_key: str | bytes | None, cookie_name: str, request: Request) -> Any:
    """The request's session: its cookie's verified contents, else an empty session."""
    if not secret_key:
        return NullSession()
    cookie = request.cookies.get(cookie_name)
    if not cookie:
        return SecureCookieSession()
    try:
        data = cookie_serializer(secret_key).loads(cookie)
    except BadData:
        return SecureCookieSession()
    return SecureCookieSession(data if isinstance(data, dict) else None)


def save_session(
    secret_key: str | bytes | None, cookie_name: str, session: Any, response: Response
) -> None:
    """Set the cookie if the session changed (delete it if it was emptied); otherwise do nothing."""
    if not session.modified:
        return
    if not session:
        response.delete_cookie(cookie_name, path="/", httponly=True, samesite="Lax")
        return
    value = cookie_serializer(secret_key).dumps(dict(session))
    response.set_cookie(cookie_name, value, path="/", httponly=True, samesite="Lax")
