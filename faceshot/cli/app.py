"""The Typer application, the one place where faceshot's errors become exit codes, and the consoles.

Exit codes: 0 success (``verify``: same person), 1 a negative answer (``verify``: different
people; ``enroll-dir``: finished, but some files failed), 2 an error, with the reason on stderr;
69 a server that cannot be reached and 75 a gallery busy with another writer (run it again). The
codes come from :data:`faceshot.errors.EXIT_CODES`.

Text is printed as typed: names, paths and reasons are data, so the consoles read no rich markup
(``[test]`` stays ``[test]``) and no emoji codes (``:smile:`` stays ``:smile:``); the few styled
words are built as :class:`rich.text.Text`. ``--json`` output goes through ``print`` untouched.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING, Callable, Iterable, Optional, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from faceshot.errors import ConfigError, FaceshotError, exit_code

if TYPE_CHECKING:
    from faceshot.bulk import Runner

app = typer.Typer(
    name="faceshot",
    help="One-shot face recognition, offline: detect, verify, enroll and identify faces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
#: Standard output and standard error, for people: literal text, no markup, no emoji codes, no wrapping.
out = Console(soft_wrap=True, highlight=False, markup=False, emoji=False)
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False, emoji=False)

EXIT_OK, EXIT_NO, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130  # what shells report for a command stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # what shells report for a command whose reader went away (SIGPIPE)
T = TypeVar("T")

# The engine options every command that detects or embeds takes. Unset, each comes from the
# environment (FACESHOT_DETECTOR, FACESHOT_EMBEDDER, FACESHOT_MAX_PIXELS), then the gallery's
# settings, then the package default: faceshot.spec.resolve_spec decides, not the commands.
DetectorOption = typer.Option(
    None, "--detector", "-d",
    help="hog: fast, frontal faces. cnn: finds turned faces, slow on CPU. cnn-onnx: cnn's faces, about 15 times "
    "faster. mtcnn: small faces (after `faceshot models fetch mtcnn`). yunet:model=FILE: a YuNet ONNX file. "
    "Options and fallbacks: hog:upsample=1, hog>cnn-onnx. Default: $FACESHOT_DETECTOR, the gallery's, hog>cnn-onnx:confidence=0.5 (cnn-onnx only where hog finds nothing, its faces from confidence 0.5).",
)
EmbedderOption = typer.Option(
    None, "--embedder",
    help="Embedder name (dlib-resnet-onnx, dlib-resnet, ...) or a model from `faceshot train` (.onnx). "
    "Default: $FACESHOT_EMBEDDER, else the gallery's own, else dlib-resnet-onnx.",
)
MaxPixelsOption = typer.Option(
    None, "--max-pixels", min=1,
    help="Refuse images with more pixels than this before decoding. Default: $FACESHOT_MAX_PIXELS, the gallery's, 40000000.",
)
JsonOption = typer.Option(False, "--json", help="Print JSON instead of text.")
WorkersOption = typer.Option(None, "--workers", min=1, help="Processes to use (default: one per core).")


class RunnerName(str, enum.Enum):
    """Where a bulk command (enroll-dir, cluster run) detects and embeds."""

    local = "local"
    ray = "ray"


RunnerOption = typer.Option(
    RunnerName.local, "--runner", help="Where photos are detected and embedded: this machine's cores, or a Ray cluster (the ray extra)."
)
AddressOption = typer.Option(
    None, "--address", help="With --runner ray: the cluster's head (host:port); default: start Ray on this machine for the run."
)
ActorsOption = typer.Option(
    None, "--actors", min=1, help="With --runner ray: actors that detect and embed (default: one per CPU of the cluster)."
)


def open_runner(stack: ExitStack, runner: RunnerName, address: Optional[str], actors: Optional[int],
                workers: Optional[int]) -> Optional["Runner"]:
    """The runner the options name (``None``: the local one, with ``workers``), closed by ``stack``.

    A Ray runner connects at its first use, so a command refused later starts no Ray. Raises
    :class:`~faceshot.errors.ConfigError` for options of the other runner."""
    if runner is RunnerName.local:
        if address is not None or actors is not None:
            raise ConfigError("--address and --actors are options of --runner ray")
        return None
    if workers is not None:
        raise ConfigError("--workers sets the local runner's processes; with --runner ray, use --actors")
    from faceshot.bulk_ray import RayRunner

    chosen = RayRunner(address, actors=actors)
    stack.callback(chosen.close)
    return chosen


GalleryOption = typer.Option(
    None, "--db",
    help="Gallery: a file path, sqlite:///FILE, or postgresql://USER:PASSWORD@HOST:PORT/DB "
    "(?vectors=URL-ENCODED-URL for another vector engine). Default: $FACESHOT_DB, else ./faceshot.db.",
)
ThresholdOption = typer.Option(
    None, "--threshold", "-t", help="Score needed for a match. Higher: fewer strangers accepted, more true matches missed."
)
FarOption = typer.Option(None, "--far", help="Target false-accept rate instead of a threshold, e.g. 0.001.")
Threshold = Optional[float]


def reports_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Turn faceshot's errors into a one-line reason on stderr and the exit code the error tree's
    table gives it (2 for bad input or usage); no traceback.

    An ``OSError`` is the user's file system refusing a file the command writes or reads (a report
    in a missing folder, a full disk): also exit 2 with the reason. Ctrl-C exits 130 ("interrupted",
    no traceback).
    """

    @functools.wraps(command)
    def run(*args: object, **kwargs: object) -> None:
        try:
            command(*args, **kwargs)
        except FaceshotError as exc:
            error(exc)
            raise typer.Exit(exit_code(exc)) from None
        except BrokenPipeError:
            # The reader of stdout went away (`| head`): stop quietly, as Unix tools do (status 141,
            # a SIGPIPE's), and keep Python from failing again when it flushes stdout at exit.
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except OSError as exc:
            logging.getLogger(__name__).debug("command failed", exc_info=True)
            where = f"{exc.filename}: " if exc.filename else ""
            error(f"{where}{exc.strerror or exc}")
            raise typer.Exit(EXIT_ERROR) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return run


def error(message: object) -> None:
    """``error: <message>`` on stderr, the message printed literally."""
    err.print(Text.assemble(("error:", "red"), " ", str(message)))


def progress(items: Iterable[T], label: str, total: int | None = None) -> Iterable[T]:
    """Items one by one, with a progress bar on stderr when there are several (``total``: their
    number, needed when ``items`` has no length)."""
    total = len(items) if total is None else total  # type: ignore[arg-type]
    if total < 2:
        yield from items
        return
    with progress_bar() as bar:
        task = bar.add_task(label, total=total)
        for item in items:
            yield item
            bar.advance(task)


def progress_bar() -> Progress:
    # markup=False: descriptions hold people's names ("enrolling [test]").
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # Off when stderr is not a terminal: logs get no bar, and an error no blank line before it.
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)
