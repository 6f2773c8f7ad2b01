"""The ``faceshot`` command: thin Typer adapters over the library (see ``faceshot --help``)."""

from faceshot.cli import cluster, core, evaluate, gallery, models, service, train, watch  # noqa: F401  (register the commands)
from faceshot.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
