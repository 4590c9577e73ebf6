"""A small app written exactly as a Flask 0.1 user would write it (flaskr-style).

Only the import line names `framework`; test_flask01_compat.py runs this same source with that
line changed to `flask`, against real Flask, and expects the same behaviour.
"""

import sqlite3

from framework import (
    Flask,
    abort,
    escape,
    flash,
    g,
    redirect,
    render_template,
    render_template_string,
    request,
    session,
    url_for,
)

# configuration, the 0.1 way: module constants
DATABASE = ":memory:"
SECRET_KEY = "development key"
USERNAME = "admin"
PASSWORD = "default"

app = Flask(__name__)
app.secret_key = SECRET_KEY

SCHEMA = "create table if not exists entries (id integer primary key, title text, text text)"


def connect_db():
    return sqlite3.connect(DATABASE)


@app.before_request
def before_request():
    g.db = connect_db()
    g.db.execute(SCHEMA)


@app.after_request
def after_request(response):
    g.db.close()
    response.headers["X-Flask01"] = "yes"
    return response


@app.route("/")
def show_entries():
    cur = g.db.execute("select title, text from entries order by id desc")
    entries = [dict(title=row[0], text=row[1]) for row in cur.fetchall()]
    return render_template("show_entries.html", entries=entries)


@app.route("/add", methods=["POST"])
def add_entry():
    if not session.get("logged_in"):
        abort(401)
    g.db.execute(
        "insert into entries (title, text) values (?, ?)",
        [request.form["title"], request.form["text"]],
    )
    g.db.commit()
    flash("New entry was successfully posted")
    return redirect(url_for("show_entries"))


@app.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        if request.form["username"] != USERNAME:
            error = "Invalid username"
        elif request.form["password"] != PASSWORD:
            error = "Invalid password"
        else:
            session["logged_in"] = True
            flash("You were logged in")
            return redirect(url_for("show_entries"))
    return render_template("login.html", error=error)


@app.route("/logout")
def logout():
    session.pop("logged_in", None)
    flash("You were logged out")
    return redirect(url_for("show_entries"))


@app.route("/hello/<name>")
def hello(name):
    greeting = request.args.get("greeting", "Hello")
    return render_template_string("{{ greeting }}, {{ name }}!", greeting=greeting, name=name)


@app.route("/escape")
def escaped():
    return f"<p>{escape(request.args.get('text', ''))}</p>"


@app.route("/status")
def status():
    return "created", 201


@app.errorhandler(404)
def page_not_found(error):
    return render_template_string("Nothing at {{ request.path }}"), 404
