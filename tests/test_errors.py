"""Every error is inside the tree, has a code and a row in the exit-code and HTTP tables, and no
entry point (public function or CLI command) lets a raw exception or a traceback reach the user."""

from __future__ import annotations

import inspect
import io
import re
from pathlib import Path

import numpy as np
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

import faceshot
from faceshot import errors
from faceshot.cli import app

ERROR_CLASSES = [getattr(errors, name) for name in errors.__all__ if inspect.isclass(getattr(errors, name))]


# -- the tree -----------------------------------------------------------------------------------


def test_every_class_has_its_own_stable_code_and_a_row_in_both_tables():
    codes = {}
    for cls in ERROR_CLASSES:
        assert issubclass(cls, errors.FaceshotError)
        assert "code" in cls.__dict__, f"{cls.__name__} has no code of its own"
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", cls.code), cls.code
        assert cls.code not in codes, f"{cls.__name__} and {codes.get(cls.code)} share {cls.code!r}"
        codes[cls.code] = cls.__name__
        assert cls in errors.EXIT_CODES, f"{cls.__name__} has no exit code"
        assert cls in errors.HTTP_STATUS, f"{cls.__name__} has no HTTP status"
        assert errors.EXIT_CODES[cls] not in (0, 1), "0 and 1 are answers, not errors"
        assert 400 <= errors.HTTP_STATUS[cls] < 600
    # Each class is drawn in the tree at the top of errors.py, with its code.
    for cls in ERROR_CLASSES:
        assert re.search(rf"{cls.__name__}\s+{cls.code}\b", errors.__doc__), cls.__name__
    # Every class is public in faceshot's namespace too.
    assert {cls.__name__ for cls in ERROR_CLASSES} <= set(faceshot.__all__)


def test_lookups_walk_the_ancestry():
    class MyImageError(errors.CorruptImageError):
        pass

    assert errors.exit_code(MyImageError("x")) == errors.EXIT_CODES[errors.CorruptImageError] == 2
    assert errors.http_status(MyImageError) == 422
    assert errors.http_status(errors.NotFound("nobody")) == 404
    assert errors.exit_code(errors.GalleryBusyError) == 75
    assert errors.http_status(errors.UnavailableError) == 503
    with pytest.raises(TypeError):
        errors.exit_code(KeyError("x"))


def test_classes_replacing_builtin_exceptions_still_are_them():
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.MissingExtraError, ImportError)
    assert issubclass(errors.ImageNotFoundError, FileNotFoundError)
    assert issubclass(errors.NotFound, LookupError)
    assert str(errors.ImageNotFoundError("a.jpg: no such file")) == "a.jpg: no such file"


def test_errors_survive_pickling_between_processes():
    import pickle

    for cls in ERROR_CLASSES:
        copy = pickle.loads(pickle.dumps(cls("what went wrong")))
        assert type(copy) is cls and str(copy) == "what went wrong" and copy.code == cls.code


# -- raw exceptions that used to escape ---------------------------------------------------------


def test_unknown_backend_option_is_a_config_error_listing_the_valid_ones():
    from faceshot.detect import detectors
    from faceshot.embed import embedders

    with pytest.raises(errors.ConfigError, match="no option 'colour'.*max_side"):
        detectors.create("hog", colour=3)
    with pytest.raises(errors.ConfigError, match="no option 'colour'.*threads"):
        detectors.create("cnn-onnx", colour=3)  # takes its parent's options through **options
    for name in embedders.names():
        with pytest.raises(errors.ConfigError, match="colour"):
            embedders.create(name, colour=3)


@pytest.mark.parametrize(
    "kind,name,options",
    [
        ("detector", "hog", {"max_side": 10}),
        ("detector", "hog", {"large_face": 2.0}),
        ("detector", "cnn-onnx", {"threads": 0}),
        ("embedder", "dlib-resnet-onnx", {"batch_size": 0}),
    ],
)
def test_impossible_option_values_are_config_errors(kind, name, options):
    from faceshot.detect import detectors
    from faceshot.embed import embedders

    registry = detectors if kind == "detector" else embedders
    with pytest.raises(errors.ConfigError, match=next(iter(options))) as caught:
        registry.create(name, **options)
    assert isinstance(caught.value, ValueError)  # what callers caught before


def test_onnxruntime_failure_while_running_is_a_model_error():
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    from faceshot.onnx_graphs import GuardedSession

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = GuardedSession(onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]), "tiny")
    assert session.run(None, {"x": np.ones((1, 3), np.float32)})[0].shape == (1, 3)
    with pytest.raises(errors.ModelError, match="onnxruntime failed running tiny"):
        session.run(None, {"x": np.ones((2, 5), np.float32)})  # onnxruntime's own InvalidArgument
    assert onnx is not None


# -- load_image on random and damaged bytes raises only ImageErrors ------------------------------


def _sample(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    pixels = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **({"quality": 80} if fmt == "JPEG" else {}))
    return buffer.getvalue()


SAMPLES = [_sample(fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")]


@st.composite
def damaged(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(st.one_of(st.binary(max_size=2048), damaged()))
def test_load_image_on_random_and_damaged_bytes_raises_only_image_errors(data):
    try:
        pixels = faceshot.load_image(data, max_pixels=4_000_000)
    except errors.ImageError:
        return
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3


@settings(max_examples=100, deadline=None, database=None)
@given(st.text(max_size=300))
def test_any_text_is_a_path_or_a_data_url_and_fails_as_an_image_error(text):
    try:
        faceshot.load_image(text)
    except errors.ImageError:
        pass


# -- every public function and every CLI command, fed bad input ---------------------------------


@pytest.fixture()
def bad(tmp_path) -> dict[str, Path]:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    not_a_db = tmp_path / "not-a-gallery.db"
    not_a_db.write_text("just some text, not a database\n")
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    return {
        "missing": tmp_path / "missing.jpg",
        "corrupt": corrupt,
        "folder": tmp_path / "no-such-folder",
        "empty": empty,
        "db": tmp_path / "new.db",
        "not_a_db": not_a_db,
        "tmp": tmp_path,
    }


def _image_functions() -> list[str]:
    """The public functions that take an image first: every one must refuse bad ones cleanly."""
    names = []
    for name in faceshot.__all__:
        obj = getattr(faceshot, name)
        if inspect.isfunction(obj):
            params = list(inspect.signature(obj).parameters.values())
            if params and ("ImageInput" in str(params[0].annotation) or name == "load_image_base64"):
                names.append(name)
    return names


def test_the_image_functions_are_found():
    assert {"detect", "embed", "verify", "load_image", "load_image_base64"} <= set(_image_functions())


@pytest.mark.parametrize("name", _image_functions())
@pytest.mark.parametrize("kind", ["missing", "corrupt", "nul", "long", "data_url"])
def test_public_functions_refuse_bad_images_with_an_image_error(name, kind, bad):
    function = getattr(faceshot, name)
    source = {
        "missing": bad["missing"],
        "corrupt": bad["corrupt"],
        "nul": str(bad["tmp"] / "a\0b.jpg"),
        "long": bad["tmp"] / ("x" * 300 + ".jpg"),
        "data_url": "data:image/jpeg;base64,not*base64",
    }[kind]
    if name == "load_image_base64":
        source = "not base64 at all!" if kind != "data_url" else source
    params = list(inspect.signature(function).parameters)
    args = [source, source] if len(params) > 1 and params[1] in ("image_b", "b") else [source]
    with pytest.raises(errors.ImageError):
        function(*args)


def _commands(group=None, path=()):
    group = group or typer.main.get_command(app)
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield " ".join((*path, name))


#: Bad input for every command: a missing file or folder, a corrupt image, a file that is not a
#: gallery, or an impossible option value. ``{name}`` is replaced from the ``bad`` fixture; a
#: second item, if ever needed, names why a case is still expected to fail.
CLI_CASES: dict[str, list[tuple]] = {
    "detect": [(["{corrupt}"],), (["{missing}"],), (["--detector", "nope", "{corrupt}"],),
               (["--detector", "hog:upsample=99", "{corrupt}"],), (["{corrupt}", "--workers", "0"],),
               (["--detector", "yunet:model={missing}", "{corrupt}"],), (["--detector", "hog>yunet:model={missing}", "{corrupt}"],)],
    "verify": [(["{corrupt}", "{missing}"],), (["{missing}", "{missing}", "--multiple", "nope"],)],
    "calibrate": [(["{folder}", "--far", "0.001"],), (["{empty}", "--far", "2"],)],
    "enroll": [(["Ada", "{missing}", "--db", "{db}"],), (["Ada", "{corrupt}", "--db", "{db}"],)],
    "enroll-dir": [(["{folder}", "--db", "{db}"],), (["{empty}", "--db", "{db}"],),
                   (["{folder}", "--db", "{db}", "--address", "127.0.0.1:1"],),
                   (["{folder}", "--db", "{db}", "--runner", "ray", "--workers", "2"],),
                   (["file://{folder}", "--db", "{db}"],), (["{folder}", "--db", "{db}", "--batch", "0"],)],
    "identify": [(["{missing}", "--db", "{not_a_db}"],), (["{corrupt}", "--db", "{db}"],),
                 (["{corrupt}", "--workers", "0", "--db", "{db}"],)],
    "train": [(["{folder}"],), (["{folder}", "--schedule", "linear"],), (["{folder}", "--epochs", "0"],)],
    "cluster run": [(["{folder}"],), (["{empty}"],), (["{corrupt}", "--algorithm", "nope"],),
                    (["{corrupt}", "--actors", "2"],), (["{corrupt}", "--runner", "ray", "--workers", "1"],)],
    "cluster list": [(["--db", "{not_a_db}"],)],
    "cluster name": [(["1", "Ada", "--db", "{not_a_db}"],)],
    "cluster merge": [(["1", "2", "--db", "{not_a_db}"],)],
    "cluster split": [(["1", "2", "--db", "{not_a_db}"],)],
    "eval verify": [(["--pairs", "{missing}", "--root", "{folder}"],)],
    "eval identify": [(["{folder}"],)],
    "eval fewshot": [(["{folder}"],)],
    "people list": [(["--db", "{not_a_db}"],)],
    "people show": [(["Ada", "--db", "{not_a_db}"],)],
    "people rename": [(["Ada", "Bob", "--db", "{not_a_db}"],)],
    "people merge": [(["Ada", "Bob", "--db", "{not_a_db}"],)],
    "people remove": [(["Ada", "--db", "{not_a_db}"],)],
    "people remove-face": [(["1", "--db", "{not_a_db}"],)],
    "gallery check": [(["--db", "{not_a_db}"],)],
    "gallery rebuild": [(["--db", "{not_a_db}"],)],
    "gallery export": [(["{tmp}/out.jsonl", "--db", "{not_a_db}"],)],
    "gallery import": [(["{missing}", "--db", "{db}"],)],
    "gallery migrate": [(["{not_a_db}", "{tmp}/copy.db"],), (["{missing}", "{tmp}/copy.db"],),
                        (["{db}", "nope://x/y"],)],
    "gallery index": [(["--db", "{not_a_db}"],), (["--db", "{db}"],), (["--kind", "nope", "--db", "{db}"],)],
    "models fetch": [(["nope", "--cache-dir", "{tmp}/models"],), (["mtcnn", "--wheel", "{missing}", "--cache-dir", "{tmp}/models"],)],
    "serve": [(["--db", "{not_a_db}"],), (["--db", "{db}"],), (["--db", "{db}", "--port", "0"],)],
    "keys create": [(["--role", "nope", "--db", "{db}"],), (["--role", "admin", "--db", "{not_a_db}"],),
                    (["--role", "admin", "--group", " ", "--db", "{db}"],)],
    "watch": [(["{missing}", "--db", "{not_a_db}"],), (["{corrupt}", "--db", "{db}"],), (["{corrupt}", "--every", "0"],)],
    "keys list": [(["--db", "{not_a_db}"],), (["--db", "{db}"],)],
    "keys revoke": [(["1", "--db", "{not_a_db}"],), (["x", "--db", "{db}"],)],
}


def test_the_cli_table_has_a_row_for_every_registered_command():
    assert set(CLI_CASES) == set(_commands()), "add the new command's bad input to CLI_CASES"


@pytest.mark.parametrize(
    "command,case",
    [(command, case) for command, cases in CLI_CASES.items() for case in cases],
    ids=lambda value: value if isinstance(value, str) else " ".join(value[0]).replace("{", "").replace("}", ""),
)
def test_every_command_refuses_bad_input_cleanly(command, case, bad, monkeypatch):
    args, pending = case[0], (case[1] if len(case) > 1 else None)
    monkeypatch.chdir(bad["tmp"])  # a default gallery (./faceshot.db) would land here
    monkeypatch.delenv("FACESHOT_DB", raising=False)
    before = sorted(p.name for p in bad["tmp"].iterdir())
    not_a_db = bad["not_a_db"].read_bytes()
    argv = [*command.split(), *(a.format(**{k: str(v) for k, v in bad.items()}) for a in args)]
    result = CliRunner().invoke(app, argv)
    try:
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            f"{type(result.exception).__name__} escaped: {result.exception}"
        )
        assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        if lines and lines[0].startswith("error:"):
            assert len(lines) == 1, result.stderr  # one line: the reason
        else:  # a usage error found by the option parser: its own short box, no traceback
            assert "Usage" in result.stderr or "Invalid value" in result.stderr, result.stderr
        assert bad["not_a_db"].read_bytes() == not_a_db, "a file that is not a gallery was changed"
        assert sorted(p.name for p in bad["tmp"].iterdir()) == before, "something was written"
    except AssertionError as failure:
        if pending:
            pytest.xfail(f"{pending}: {str(failure).splitlines()[0]}")
        raise
