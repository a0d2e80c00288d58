"""What every response carries: security headers, and one structured access-log line (never image bytes)."""

import json
import logging
import time
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, g, request

access_log = logging.getLogger("access")

SECURITY_HEADERS = {
    "Content-Security-Policy": "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(), geolocation=()",
}


def register_http_policy(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.request_start = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if "Location" in response.headers:
            # Werkzeug builds redirects (e.g. /static//x → /static/x) from the Host header, which any client sets.
            response.headers["Location"] = _same_origin(response.headers["Location"])
        entry = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.get("request_start", time.perf_counter())) * 1000, 1),
        }
        if "faces_found" in g:
            entry["faces"] = g.faces_found
        access_log.info(json.dumps(entry))
        return response


def _same_origin(location: str) -> str:
    """The path, query and fragment of a redirect target: this app only ever redirects to itself."""
    parts = urlsplit(location)
    return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
