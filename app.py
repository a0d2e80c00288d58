"""Flask application factory; `app` at module level is what gunicorn serves (`gunicorn app:app`)."""

import logging

from flask import Flask

from config import Settings
from model.classifier import load_card
from model.pipeline import load_pipeline
from web import api, pages
from web.errors import register_error_handlers
from web.http_policy import register_http_policy
from web.metrics import register_metrics
from web.uploads import DecodeBudget, InMemoryRequest


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask(__name__)
    app.request_class = InMemoryRequest
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        MAX_PIXELS=settings.max_pixels,
        DEBUG=settings.debug,
        JSON_SORT_KEYS=False,
    )
    # Loaded here, once per process: a missing or corrupt model file stops start-up with its name.
    app.extensions["mask_pipeline"] = load_pipeline(settings.model_path)
    app.extensions["model_card"] = load_card(settings.model_path)
    app.extensions["model_file"] = settings.model_path.name
    app.extensions["decode_budget"] = DecodeBudget(settings.decode_memory_bytes, settings.decode_wait_seconds)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    register_error_handlers(app)
    register_http_policy(app)
    register_metrics(app, settings.metrics_dir)
    return app


app = create_app()
