"""``icsflow serve``: the web page and JSON API over the same engine and database as the CLI."""

from icsflow.workflow.web.app import WebSettings, create_app

__all__ = ["create_app", "WebSettings"]
