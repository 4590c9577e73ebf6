"""A small microblog on sqlite, written exactly as a Flask 0.1 app would be.

Users register, log in, post short messages and read the public timeline or one user's page.
It shows the framework's whole surface: routes with converters and methods, `g.db` opened in a
before_request hook and closed in a teardown hook, the session, flashed messages, redirects,
`abort`, templates with autoescape, a template filter and a static file.

Run it: ``python -m bench.apps.microblog [--server threaded] [--port 5000]``.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
import time
from contextlib import closing

from werkzeug.security import check_password_hash, generate_password_hash

from framework import Flask, abort, flash, g, redirect, render_template, request, session, url_for

#: the sqlite file; tests point it elsewhere before calling init_db()
DATABASE = os.environ.get("MICROBLOG_DATABASE") or os.path.join(
    tempfile.gettempdir(), "framework-microblog.db"
)
#: how many messages a timeline shows
PER_PAGE = 30
#: longest message accepted, in characters
MAX_MESSAGE = 280
#: what a username may look like (it becomes the URL of the user's page)
USERNAME = re.compile(r"[A-Za-z0-9_]{1,32}")
#: names that would hide a page of the app behind a user's page
RESERVED_NAMES = {"login", "logout", "register", "add_message", "static"}

app = Flask(__name__)
# a fresh key per process unless one is given: forked workers inherit it, restarts log users out
app.secret_key = os.environ.get("MICROBLOG_SECRET_KEY") or os.urandom(24)


def connect_db() -> sqlite3.Connection:
    db = sqlite3.connect(DATABASE)
    db.row_factory = sqlite3.Row
    return db


def init_db() -> None:
    """Create the tables (dropping existing ones)."""
    with closing(connect_db()) as db, app.open_resource("schema.sql") as schema:
        db.executescript(schema.read().decode("utf-8"))
        db.commit()


def init_db_if_missing() -> None:
    """Create the tables unless the database has them, so any WSGI server can serve ``app``."""
    with closing(connect_db()) as db:
        found = db.execute("select 1 from sqlite_master where name = 'user'").fetchone()
    if found is None:
        init_db()


def query_db(query: str, args: tuple = (), one: bool = False):
    rows = g.db.execute(query, args).fetchall()
    return (rows[0] if rows else None) if one else rows


def user_id_of(username: str) -> int | None:
    row = query_db("select user_id from user where username = ?", (username,), one=True)
    return row["user_id"] if row else None


@app.before_request
def open_db_and_load_user():
    g.db = connect_db()
    g.user = None
    if "user_id" in session:
        g.user = query_db("select * from user where user_id = ?", (session["user_id"],), one=True)


@app.teardown_request
def close_db(exc):
    db = g.pop("db", None)
    if db is not None:
        db.close()


def format_datetime(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(timestamp))


app.jinja_env.filters["datetimeformat"] = format_datetime


@app.route("/")
def timeline():
    """Everyone's latest messages, and the box to post one when logged in."""
    messages = query_db(
        "select message.*, user.username from message join user on message.author_id = user.user_id"
        " order by message.pub_date desc, message.message_id desc limit ?",
        (PER_PAGE,),
    )
    return render_template("timeline.html", messages=messages, profile_user=None)


@app.route("/<username>")
def user_timeline(username):
    profile_user = query_db("select * from user where username = ?", (username,), one=True)
    if profile_user is None:
        abort(404)
    messages = query_db(
        "select message.*, user.username from message join user on message.author_id = user.user_id"
        " where user.user_id = ? order by message.pub_date desc, message.message_id desc limit ?",
        (profile_user["user_id"], PER_PAGE),
    )
    return render_template("timeline.html", messages=messages, profile_user=profile_user)


@app.route("/add_message", methods=["POST"])
def add_message():
    if g.user is None:
        abort(401)
    text = request.form.get("text", "").strip()
    if not text:
        flash("Your message was empty.", "error")
    elif len(text) > MAX_MESSAGE:
        flash(f"Messages are at most {MAX_MESSAGE} characters.", "error")
    else:
        g.db.execute(
            "insert into message (author_id, text, pub_date) values (?, ?, ?)",
            (session["user_id"], text, int(time.time())),
        )
        g.db.commit()
        flash("Your message was recorded")
    return redirect(url_for("timeline"))


@app.route("/register", methods=["GET", "POST"])
def register():
    if g.user is not None:
        return redirect(url_for("timeline"))
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if not USERNAME.fullmatch(username) or username in RESERVED_NAMES:
            error = "You have to enter a valid username (letters, digits, _)"
        elif len(password) < 4:
            error = "Your password needs at least 4 characters"
        elif password != request.form.get("password2"):
            error = "The two passwords do not match"
        elif user_id_of(username) is not None:
            error = "The username is already taken"
        else:
            g.db.execute(
                "insert into user (username, pw_hash) values (?, ?)",
                (username, generate_password_hash(password)),
            )
            g.db.commit()
            flash("You were successfully registered and can log in now")
            return redirect(url_for("login"))
    return render_template("register.html", error=error)


@app.route("/login", methods=["GET", "POST"])
def login():
    if g.user is not None:
        return redirect(url_for("timeline"))
    error = None
    if request.method == "POST":
        user = query_db(
            "select * from user where username = ?", (request.form.get("username", ""),), one=True
        )
        if user is None or not check_password_hash(
            user["pw_hash"], request.form.get("password", "")
        ):
            error = "Invalid username or password"
        else:
            session["user_id"] = user["user_id"]
            flash("You were logged in")
            return redirect(url_for("timeline"))
    return render_template("login.html", error=error)


@app.route("/logout")
def logout():
    session.pop("user_id", None)
    flash("You were logged out")
    return redirect(url_for("timeline"))


@app.errorhandler(404)
def page_not_found(error):
    return render_template("error.html", message="No such page or user."), 404


@app.errorhandler(401)
def unauthorized(error):
    return render_template("error.html", message="Log in first."), 401


# at import, once, before a server forks or starts threads: ``python -m servers ...
# bench.apps.microblog:app`` then finds a working database (tests point DATABASE elsewhere)
init_db_if_missing()
