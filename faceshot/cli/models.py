"""``faceshot models``: fetch the models faceshot does not ship (only on this explicit request)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from faceshot.cli.app import JsonOption, app, out, reports_errors

models_app = typer.Typer(help="Fetch models faceshot does not ship (MTCNN).", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("fetch")
@reports_errors
def fetch_command(
    name: str = typer.Argument(..., help="The model: mtcnn (from facenet-pytorch 2.6.0's wheel, MIT)."),
    wheel: Optional[Path] = typer.Option(None, "--wheel", help="Use this wheel file instead of downloading it (closed networks)."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Write here instead of $XDG_CACHE_HOME/faceshot (then pass the detector cache_dir=...)."),
    as_json: bool = JsonOption,
) -> None:
    """Download a model's package without its dependencies (pip), check it by SHA-256, convert it to
    ONNX once and print where it was written. Nothing is downloaded at any other time."""
    from faceshot.models_fetch import fetch

    written = fetch(name, wheel=wheel, directory=cache_dir)
    if as_json:
        print(json.dumps({"model": name, "files": [str(path) for path in written]}))
    else:
        for path in written:
            out.print(str(path))
