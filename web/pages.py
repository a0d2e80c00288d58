"""The two HTML pages; all their behaviour lives in static/js and talks to the JSON API."""

from flask import Blueprint, current_app, render_template

bp = Blueprint("pages", __name__)


@bp.get("/")
def upload():
    return render_template("upload.html", max_upload_mb=current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024))


@bp.get("/webcam")
def webcam():
    return render_template("webcam.html")
