"""A micro-framework with Flask 0.1's public API on werkzeug + jinja2.

A Flask 0.1 application runs on it with one change, its import line::

    from framework import Flask, request, session, g, redirect, url_for, abort, \\
        render_template, flash
"""

from markupsafe import Markup, escape
from werkzeug.exceptions import abort

from framework.app import (
    Flask,
    Request,
    Response,
    flash,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    render_template_string,
    url_for,
)
from framework.ctx import _request_ctx_stack, current_app, g, request, session

__all__ = [
    "Flask",
    "Markup",
    "Request",
    "Response",
    "_request_ctx_stack",
    "abort",
    "current_app",
    "escape",
    "flash",
    "g",
    "get_flashed_messages",
    "jsonify",
    "redirect",
    "render_template",
    "render_template_string",
    "request",
    "session",
    "url_for",
]
