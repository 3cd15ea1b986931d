"""The `knowwhen` command: a thin layer over the Python API.

`app.py` holds the typer app, the shared options and the error handler; each other module registers one group
of commands on it: `classify` (train, conformal, refit, novelty), `predict` (predict, evaluate), `forecast` (knowwhen forecast ...),
`inspect` (info, models, report, explain), `screen` and `demo`.
"""
from . import classify, predict, inspect, screen, export, demo, forecast  # noqa: F401,I001  (registers the commands on `app`, in this order)
from .app import app

__all__ = ["app", "main"]


def main() -> None:
    app(prog_name="knowwhen")
