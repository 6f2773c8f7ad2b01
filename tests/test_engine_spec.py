"""The engine description: its grammar, its resolution, and every path building from it.

Each path (enroll, enroll_dir, the bulk pool in worker processes, clustering, the CLI) is given an
engine whose results differ from the defaults, and the test asserts the non-default result.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceshot.bulk import represent_files
from faceshot.detect import create_detector
from faceshot.detect.chain import FallbackDetector
from faceshot.detect.dlib_detectors import HogDetector
from faceshot.engine import Engine
from faceshot.errors import ConfigError, ImageTooLargeError, NoFaceError
from faceshot.io import DEFAULT_MAX_PIXELS
from faceshot.spec import (
    DEFAULT_DETECTOR,
    SETTING_DETECTOR,
    EngineSpec,
    StoredEngine,
    build_detector,
    parse_stage,
    resolve_spec,
)

REPO = Path(__file__).resolve().parents[1]
# On the photo below (obama.jpg at 1/6 size) the face is about 43 px wide: the default detector
# doubles small photos and finds it; without upsampling dlib's HOG does not.
NO_UPSAMPLE = "hog:upsample=0"


@pytest.fixture(scope="module")
def small_face(images, tmp_path_factory) -> Path:
    photo = Image.open(images / "obama.jpg").convert("RGB")
    path = tmp_path_factory.mktemp("small") / "small_obama.jpg"
    photo.resize((photo.width // 6, photo.height // 6)).save(path, quality=95)
    return path


@pytest.fixture(scope="module")
def people(images, small_face, tmp_path_factory) -> Path:
    """ROOT/person/photo: obama (a large and a small photo), biden."""
    root = tmp_path_factory.mktemp("people")
    (root / "obama").mkdir()
    (root / "biden").mkdir()
    (root / "obama" / "large.jpg").write_bytes((images / "obama2.jpg").read_bytes())
    (root / "obama" / "small.jpg").write_bytes(small_face.read_bytes())
    (root / "biden" / "biden.jpg").write_bytes((images / "biden.jpg").read_bytes())
    return root


# --- the grammar -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("hog", "hog"),
        ("hog:upsample=1", "hog:upsample=1"),
        (" cnn-onnx : upsample=0 , large_face=none ", "cnn-onnx:large_face=none,upsample=0"),
        ("hog:large_face=0.3,gray=true", "hog:gray=true,large_face=0.3"),
        ("hog>cnn-onnx", "hog>cnn-onnx"),
        ("hog:upsample=0 > hog:upsample=1", "hog:upsample=0>hog:upsample=1"),
    ],
)
def test_detector_texts_are_written_back_in_canonical_form_and_parse_to_the_same(text, canonical):
    spec = EngineSpec(detector=text)
    assert spec.detector == canonical
    assert EngineSpec(detector=spec.detector) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_option_values_are_typed():
    stage = parse_stage("cnn-onnx:upsample=0,large_face=none,confidence=-0.5,cache_dir=models", "detector")
    assert stage.kwargs() == {"upsample": 0, "large_face": None, "confidence": -0.5, "cache_dir": "models"}
    detector = build_detector("hog:gray=true,upsample=2,large_face=0.25")
    assert (detector.gray, detector.upsample, detector.large_face) == (True, 2, 0.25)


def test_model_files_are_paths_with_options():
    assert parse_stage("./models/faces.onnx", "embedder").name == "./models/faces.onnx"
    stage = parse_stage("C:/models/faces.ONNX:threads=2,batch_size=64", "embedder")
    assert stage.name == "C:/models/faces.ONNX" and stage.kwargs() == {"threads": 2, "batch_size": 64}
    assert str(EngineSpec(embedder="m.onnx:threads=2").embedder) == "m.onnx:threads=2"


def test_a_chain_tries_its_detectors_in_order(small_face):
    from faceshot.io import load_image

    chain = build_detector(f"{NO_UPSAMPLE}>hog:upsample=1")
    assert isinstance(chain, FallbackDetector) and chain.name == "hog>hog"
    image = load_image(small_face)
    assert chain.members[0].detect(image) == []
    assert chain.detect(image) == chain.members[1].detect(image) != []
    assert pickle.loads(pickle.dumps(chain)).detect(image) == chain.detect(image)


@pytest.mark.parametrize(
    "text, words",
    [
        ("hgo", ["unknown detector 'hgo'", "cnn, cnn-onnx, hog"]),
        ("hog:upsamp=1", ["no option 'upsamp'", "confidence, gray, large_face, max_side, min_face, sure, turns, upsample, upsample_below"]),
        ("cnn-onnx:thread=2", ["no option 'thread'", "threads", "model_file"]),
        ("hog:upsample", ["key=value"]),
        ("hog:upsample=1,upsample=2", ["given twice"]),
        ("hog>", ["no backend named", "hog"]),
        ("", ["empty detector", "hog"]),
    ],
)
def test_bad_detector_texts_say_what_exists(text, words):
    with pytest.raises(ConfigError) as caught:
        EngineSpec(detector=text)
    for word in words:
        assert word in str(caught.value)


def test_bad_embedder_texts_say_what_exists():
    with pytest.raises(ConfigError, match="dlib-resnet-onnx"):
        EngineSpec(embedder="dlib-resnett")
    with pytest.raises(ConfigError, match="options: batch_size, cache_dir, model_file, spin, threads"):
        EngineSpec(embedder="dlib-resnet-onnx:mirror=false")
    with pytest.raises(ConfigError, match="its options: batch_size, card, threads"):
        EngineSpec(embedder="model.onnx:size=3")
    with pytest.raises(ConfigError, match="max_pixels"):
        EngineSpec(max_pixels=0)


def test_an_unknown_option_is_a_config_error_not_a_type_error():
    with pytest.raises(ConfigError, match="upsample_below"):
        create_detector("hog", upsamp=1)
    # A value out of range is reported with the stage it came from.
    with pytest.raises(ConfigError, match=r"hog:large_face=1\.5.*large_face"):
        Engine(detector="hog:large_face=1.5")


# --- the description and its engines --------------------------------------------------------------


def test_an_engine_gives_back_its_description_and_a_description_builds_once_per_process():
    engine = Engine(detector="hog:upsample=1", max_pixels=1_000_000)
    assert engine.spec == EngineSpec("hog:upsample=1", max_pixels=1_000_000)
    assert engine.detector.upsample == 1 and engine.max_pixels == 1_000_000
    built = engine.spec.build()
    assert built is engine.spec.build() and built is not engine
    assert Engine.from_spec(engine.spec).spec == engine.spec
    detector = HogDetector(upsample=0)
    assert Engine(detector=detector).spec.detector is detector
    assert pickle.loads(pickle.dumps(Engine(detector=detector).spec)).detector.upsample == 0
    spec = EngineSpec(detector=detector)
    assert not spec.is_text and spec.build().detector is detector and spec.build() is not spec.build()


# --- resolution: flag > environment > gallery > default --------------------------------------------


def test_each_part_comes_from_the_flag_else_the_environment_else_the_gallery_else_the_default():
    stored = StoredEngine(space="dlib-resnet", dim=128, detector="cnn-onnx", max_pixels=5_000_000)
    environ = {"FACESHOT_DETECTOR": "hog:upsample=1", "FACESHOT_EMBEDDER": "dlib-resnet", "FACESHOT_MAX_PIXELS": "2_000_000"}
    assert resolve_spec(environ={}) == EngineSpec()
    assert resolve_spec(stored=stored, environ={}) == EngineSpec("cnn-onnx", "dlib-resnet-onnx", max_pixels=5_000_000)
    assert resolve_spec(stored=stored, environ=environ) == EngineSpec("hog:upsample=1", "dlib-resnet", max_pixels=2_000_000)
    flags = resolve_spec("cnn", "dlib-resnet-onnx", 1_000, stored=stored, environ=environ)
    assert flags == EngineSpec("cnn", "dlib-resnet-onnx", max_pixels=1_000)
    # An empty variable counts as unset.
    assert resolve_spec(environ={"FACESHOT_DETECTOR": " "}).detector == DEFAULT_DETECTOR == "hog>cnn-onnx:confidence=0.5"


def test_a_bad_environment_variable_is_named():
    with pytest.raises(ConfigError, match="FACESHOT_DETECTOR: unknown detector 'hgo'"):
        resolve_spec(environ={"FACESHOT_DETECTOR": "hgo"})
    with pytest.raises(ConfigError, match="FACESHOT_EMBEDDER: .*no option 'speed'"):
        resolve_spec(environ={"FACESHOT_EMBEDDER": "dlib-resnet-onnx:speed=2"})
    with pytest.raises(ConfigError, match="FACESHOT_MAX_PIXELS"):
        resolve_spec(environ={"FACESHOT_MAX_PIXELS": "lots"})
    with pytest.raises(ConfigError, match="FACESHOT_MAX_PIXELS: max_pixels"):
        resolve_spec(environ={"FACESHOT_MAX_PIXELS": "-5"})


def test_a_reopened_gallery_or_collection_runs_the_fast_embedder_of_its_space(tmp_path, monkeypatch):
    from faceshot.cluster import Collection
    from faceshot.gallery import Gallery

    monkeypatch.delenv("FACESHOT_EMBEDDER", raising=False)
    monkeypatch.delenv("FACESHOT_DETECTOR", raising=False)
    db = tmp_path / "g.db"
    with Gallery(db, engine=Engine(embedder="dlib-resnet")) as gallery:
        assert gallery.store.embedder == "dlib-resnet"
        gallery.settings.set(SETTING_DETECTOR, NO_UPSAMPLE)  # a default, not a pin
    with Gallery(db) as gallery:
        assert gallery.engine.embedder.name == "dlib-resnet-onnx"
        assert gallery.engine.spec.detector == NO_UPSAMPLE
    with Collection(db) as collection:
        assert collection.engine.embedder.name == "dlib-resnet-onnx"
        assert collection.engine.spec.detector == NO_UPSAMPLE
    monkeypatch.setenv("FACESHOT_DETECTOR", "cnn-onnx")
    with Gallery(db) as gallery:
        assert gallery.engine.spec.detector == "cnn-onnx"


# --- non-default engines reach every path ----------------------------------------------------------


def test_enroll_uses_the_engines_detector(tmp_path, small_face):
    from faceshot.gallery import Gallery

    with Gallery(tmp_path / "a.db", engine=Engine()) as gallery:
        assert gallery.enroll("obama", small_face, force=True).added
    with Gallery(tmp_path / "b.db", engine=Engine(detector=NO_UPSAMPLE)) as gallery:
        result = gallery.enroll("obama", small_face, force=True)
        assert not result.added and result.rejected[0].error == NoFaceError.__name__


def test_the_bulk_pool_runs_a_detector_instance_and_the_pixel_limit_in_its_worker_processes(images, small_face):
    paths = [small_face, images / "obama.jpg", images / "biden.jpg"]
    default = list(represent_files(paths, workers=2, backend="processes"))
    assert [r.found for r in default] == [1, 1, 1]
    custom = Engine(detector=HogDetector(upsample=0), max_pixels=1_200_000)
    results = list(represent_files(paths, engine=custom, workers=2, backend="processes"))
    assert results[0].ok and results[0].found == 0  # the instance's options, in another process
    assert results[1].ok and results[1].found == 1  # 910 × 1137 px: under the limit
    assert isinstance(results[2].error, ImageTooLargeError)  # 970 × 2204 px: over it
    # The same through a spec, and through threads.
    spec = EngineSpec(NO_UPSAMPLE, max_pixels=1_200_000)
    for backend in ("processes", "threads"):
        found = [(r.found, type(r.error).__name__) for r in represent_files(paths, engine=spec, workers=2, backend=backend)]
        assert found == [(0, "NoneType"), (1, "NoneType"), (0, "ImageTooLargeError")]


def test_enroll_dir_uses_the_pixel_limit_and_detector_options(tmp_path, people):
    from faceshot.gallery import Gallery

    with Gallery(tmp_path / "a.db", engine=Engine(max_pixels=1_500_000)) as gallery:
        summary = gallery.enroll_dir(people, force=True, workers=2)
    assert [Path(f.source).name for f in summary.failed] == ["biden.jpg"]
    assert summary.failed[0].error == ImageTooLargeError.__name__
    with Gallery(tmp_path / "b.db", engine=Engine(detector=NO_UPSAMPLE)) as gallery:
        summary = gallery.enroll_dir(people, force=True, workers=2)
    assert [(Path(f.source).name, f.error) for f in summary.failed] == [("small.jpg", "NoFaceError")]
    assert summary.enrolled == 2


def test_clustering_uses_the_engines_detector_and_pixel_limit(people):
    from faceshot.cluster import Collection

    with Collection(None, Engine(detector=NO_UPSAMPLE, max_pixels=1_500_000), workers=2) as collection:
        result = collection.add([people])
    assert [Path(p).name for p in result.no_face] == ["small.jpg"]
    assert [Path(f.source).name for f in result.failed] == ["biden.jpg"]


# --- a trained embedder ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapter_model(tmp_path_factory) -> Path:
    """A face adapter (a small head over dlib's vectors) that is not the identity, exported as faceshot train does."""
    torch = pytest.importorskip("torch")
    from faceshot.train.backbones import create_backbone
    from faceshot.train.export import export_model

    torch.manual_seed(3)
    adapter = create_backbone("face-adapter", dim_in=128)
    with torch.no_grad():
        adapter.outer.weight.normal_(0, 0.1)
    return export_model(adapter, tmp_path_factory.mktemp("model") / "office.onnx")


def test_a_trained_embedder_reaches_enroll_dir_and_clustering_in_worker_processes(tmp_path, people, adapter_model):
    from faceshot.cluster import Collection
    from faceshot.gallery import Gallery

    engine = Engine(embedder=str(adapter_model))
    expected = engine.embed(people / "obama" / "large.jpg")[0]
    assert float(expected @ Engine().embed(people / "obama" / "large.jpg")[0]) < 0.999  # not dlib's vector
    with Gallery(tmp_path / "g.db", engine=engine) as gallery:
        summary = gallery.enroll_dir(people, force=True, workers=2)
        assert summary.enrolled == 3 and not summary.failed
        stored = gallery.store.embeddings(["obama"])["obama"]
    assert np.max(stored @ expected) > 0.9999
    with Collection(None, engine, threshold=0.5, workers=2) as collection:
        result = collection.add([people / "obama"])
    assert result.added == 2
    assert collection.engine.embedder.space.startswith("office@")


def test_a_gallery_made_with_a_trained_model_names_the_file_to_pass(tmp_path, images, adapter_model, monkeypatch):
    from faceshot.gallery import Gallery

    monkeypatch.delenv("FACESHOT_EMBEDDER", raising=False)
    model = tmp_path / "copy.onnx"
    model.write_bytes(adapter_model.read_bytes())
    db = tmp_path / "g.db"
    with Gallery(db, engine=Engine(embedder=str(model))) as gallery:
        gallery.enroll("obama", images / "obama.jpg")
    with Gallery(db) as gallery:  # the recorded file is there: it is used
        assert gallery.engine.embedder.space == gallery.store.embedder
        assert gallery.identify(images / "obama2.jpg", threshold=0.5)[0].identity == "obama"
    model.unlink()
    with Gallery(db) as gallery:  # the file is gone: what needs no new vector still works
        assert [p.name for p in gallery.people()] == ["obama"]
        with pytest.raises(ConfigError) as caught:
            gallery.identify(images / "obama2.jpg", threshold=0.5)
    message = str(caught.value)
    assert "trained model 'office'" in message and str(model) in message and "no longer there" in message
    assert "--embedder" in message and "FACESHOT_EMBEDDER" in message
    monkeypatch.setenv("FACESHOT_EMBEDDER", str(adapter_model))  # the same model, from another file
    with Gallery(db) as gallery:
        assert gallery.identify(images / "obama2.jpg", threshold=0.5)[0].identity == "obama"


# --- the command line ------------------------------------------------------------------------------


def cli(*args: object, env: dict[str, str] | None = None):
    from faceshot.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def test_cli_engine_flags_and_variables_reach_detection(small_face, images):
    assert cli("detect", small_face).stdout.count("\n") == 2  # header + one face
    run = cli("detect", small_face, "--detector", NO_UPSAMPLE)
    assert run.exit_code == 0 and run.stdout.count("\n") == 1
    run = cli("detect", small_face, env={"FACESHOT_DETECTOR": NO_UPSAMPLE})
    assert run.stdout.count("\n") == 1
    run = cli("detect", small_face, "--detector", "hog", env={"FACESHOT_DETECTOR": NO_UPSAMPLE})
    assert run.stdout.count("\n") == 2  # the flag wins
    run = cli("detect", images / "biden.jpg", "--max-pixels", 1_000_000)
    assert run.exit_code == 2 and "pixels" in run.output
    run = cli("detect", small_face, "--detector", "hog:upsamp=1")
    assert run.exit_code == 2 and "upsample_below" in run.output and "Traceback" not in run.output


@pytest.mark.parametrize(
    "command",
    [
        ["detect"], ["verify", "a", "b"], ["enroll", "x", "a"], ["enroll-dir", "d"], ["identify", "a"],
        ["cluster", "run", "d"], ["eval", "verify", "--pairs", "p", "--root", "r"], ["eval", "identify", "d"],
        ["eval", "fewshot", "d"], ["calibrate", "d", "--far", "0.01"], ["serve"],
    ],
)
def test_every_command_that_detects_or_embeds_takes_the_engine_options(command):
    run = cli(*command, "--help")
    assert run.exit_code == 0, run.output
    wanted = ("--detector", "--max-pixels") + (() if command == ["detect"] else ("--embedder",))
    for option in wanted:
        assert option in run.output, (command, option)


def test_enroll_dir_cli_takes_the_pixel_limit(tmp_path, people):
    run = cli("enroll-dir", people, "--db", tmp_path / "g.db", "--force", "--max-pixels", 1_500_000, "--workers", 1)
    assert run.exit_code == 1 and "biden.jpg" in run.output and "pixels" in run.output


def test_commands_that_embed_nothing_load_no_model(tmp_path, images, adapter_model):
    """people list, gallery export and cluster list on a gallery of a trained model whose file is
    gone: they work, and afterwards no onnxruntime session and no dlib model exists in the process."""
    model = tmp_path / "gone.onnx"
    model.write_bytes(adapter_model.read_bytes())
    db = tmp_path / "g.db"
    setup = cli("enroll", "obama", images / "obama.jpg", "--db", db, "--embedder", model)
    assert setup.exit_code == 0, setup.output
    model.unlink()
    code = f"""
import sys
from typer.testing import CliRunner
from faceshot.cli import app
from faceshot import models, onnx_graphs
runner = CliRunner()
for args in (["people", "list", "--db", {str(db)!r}], ["gallery", "export", {str(tmp_path / "out.json")!r}, "--db", {str(db)!r}],
             ["cluster", "list", "--db", {str(db)!r}]):
    run = runner.invoke(app, args)
    assert run.exit_code in (0, 1), (args, run.output)
print(onnx_graphs.sessions_started(), len(models._per_thread.__dict__.get("models", {{}})), "dlib" in sys.modules)
"""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("FACESHOT_EMBEDDER", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "0", "False"]


def test_default_pixel_limit_is_the_io_default():
    assert EngineSpec().max_pixels == DEFAULT_MAX_PIXELS == Engine().max_pixels


def test_an_engine_that_cannot_reach_worker_processes_says_so(images):
    class Local(HogDetector):  # a class defined in a function cannot be pickled
        pass

    engine = Engine(detector=Local())
    with pytest.raises(ConfigError, match="cannot be sent to worker processes.*backend='threads'"):
        list(represent_files([images / "obama.jpg", images / "biden.jpg"], engine=engine, workers=2))
    found = list(represent_files([images / "obama.jpg", images / "biden.jpg"], engine=engine, workers=2, backend="threads"))
    assert [r.found for r in found] == [1, 1]


def test_a_collection_made_with_a_trained_model_reopens_with_it(tmp_path, people, adapter_model, monkeypatch):
    from faceshot.cluster import Collection

    monkeypatch.delenv("FACESHOT_EMBEDDER", raising=False)
    db = tmp_path / "photos.db"
    run = cli("cluster", "run", people / "obama", "--db", db, "--embedder", adapter_model, "--threshold", 0.5,
              "--workers", 2, "--json")
    assert run.exit_code == 0, run.output
    with Collection(db) as collection:  # no embedder given: the recorded model file
        assert collection.engine.embedder.space.startswith("office@")
        assert collection.threshold == 0.5
        assert collection.add([people / "biden"]).added == 1


def test_cli_variables_reach_verify(images):
    run = cli("verify", images / "obama.jpg", images / "obama2.jpg", env={"FACESHOT_MAX_PIXELS": "1000000"})
    assert run.exit_code == 2 and "pixels" in run.output
    run = cli("verify", images / "obama.jpg", images / "obama2.jpg", "--max-pixels", 2_000_000,
              env={"FACESHOT_MAX_PIXELS": "1000000"})
    assert run.exit_code == 0, run.output
    run = cli("verify", images / "obama.jpg", images / "obama2.jpg", env={"FACESHOT_EMBEDDER": "dlib-resnet-onnx:speed=1"})
    assert run.exit_code == 2 and "FACESHOT_EMBEDDER" in run.output and "threads" in run.output
