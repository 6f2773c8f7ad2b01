"""Bring-your-own ONNX embedders described by a model card: dlib's own ResNet graph loaded through a
card gives dlib-resnet-onnx's vectors; a calibration written by `faceshot calibrate --out` gives it
operating points; a bad card or a graph that disagrees with it is a clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from faceshot.embed import create_embedder
from faceshot.embed.card import CardEmbedder
from faceshot.embed.dlib_onnx import onnx_model
from faceshot.engine import Engine
from faceshot.errors import ConfigError, ModelError
from faceshot.gallery import Gallery

CARD = {
    "card": 1, "name": "dlib-by-card", "input": "chips", "layout": "NHWC", "dtype": "uint8", "size": 150,
    "colour": "RGB", "dim": 128, "aligner": "dlib-5pt", "mirror": True,
}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """dlib's face ResNet as converted to ONNX, in a file of its own with a card beside it."""
    folder = tmp_path_factory.mktemp("card")
    path = folder / "face.onnx"
    path.write_bytes(onnx_model())
    (folder / "face.card.json").write_text(json.dumps(CARD))
    return path


def test_dlibs_graph_through_a_card_gives_dlibs_vectors(model, images) -> None:
    engine = Engine(embedder=str(model))
    assert isinstance(engine.embedder, CardEmbedder)
    reference = Engine()  # dlib-resnet-onnx
    for name in ("obama.jpg", "biden.jpg"):
        ours, theirs = engine.embed(images / name), reference.embed(images / name)
        assert ours.shape == theirs.shape == (1, 128) and ours.dtype == np.float32
        assert float(ours[0] @ theirs[0]) > 0.99999
    digest = engine.embedder.sha256[:12]
    assert engine.embedder.space == f"dlib-by-card@{digest}/dlib-5pt"
    assert engine.embedder.calibration is None  # no operating points without a calibration


def test_the_card_can_be_named_and_its_fields_are_checked(model, tmp_path) -> None:
    card = tmp_path / "other.json"
    card.write_text(json.dumps(CARD | {"layout": "NCWH"}))
    with pytest.raises(ConfigError, match="'layout' must be one of NCHW, NHWC"):
        create_embedder(str(model), card=str(card))
    card.write_text(json.dumps({k: v for k, v in CARD.items() if k != "dim"}))
    with pytest.raises(ConfigError, match="lacks 'dim'"):
        create_embedder(str(model), card=str(card))
    card.write_text(json.dumps(CARD | {"aligner": "mtcnn-112"}))
    with pytest.raises(ConfigError, match="unknown aligner 'mtcnn-112'"):
        create_embedder(str(model), card=str(card))
    card.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        create_embedder(str(model), card=str(card))
    card.write_text(json.dumps(CARD | {"input": "data"}))
    with pytest.raises(ModelError, match="takes chips, but its card says 'data'"):
        create_embedder(str(model), card=str(card)).embed(np.zeros((1, 150, 150, 3), np.uint8))
    card.write_text(json.dumps(CARD | {"dim": 512}))
    with pytest.raises(ModelError, match="gives 128-D vectors, but its card says 512"):
        create_embedder(str(model), card=str(card)).embed(np.zeros((1, 150, 150, 3), np.uint8))


def test_calibrate_out_gives_the_card_operating_points_and_a_gallery_identifies(model, datasets, images, tmp_path) -> None:
    root = tmp_path / "att"
    root.mkdir()
    for person in sorted((datasets / "att_faces").iterdir())[:8]:
        (root / person.name).symlink_to(person)
    far_file = model.parent / "face.far.json"
    run = subprocess.run(
        [sys.executable, "-m", "faceshot", "calibrate", str(root), "--far", "0.05", "--embedder", str(model),
         "--out", str(far_file), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    measured = json.loads(run.stdout)
    card = model.parent / "with-calibration.json"
    card.write_text(json.dumps(CARD | {"calibration": far_file.name}))
    embedder = create_embedder(str(model), card=str(card))
    assert embedder.calibration is not None and embedder.calibration.threshold == pytest.approx(measured["threshold"])
    engine = Engine(embedder=embedder)
    assert engine.operating_point(far=0.05).threshold == pytest.approx(measured["threshold"], abs=1e-6)
    with Gallery(tmp_path / "g.db", engine=engine) as gallery:
        gallery.enroll("Barack Obama", images / "obama.jpg")
        gallery.enroll("Joe Biden", images / "biden.jpg")
        (found,) = gallery.identify(images / "obama2.jpg")
        assert found.identity == "Barack Obama" and found.fpir is not None
    # A calibration of another model is refused.
    other = json.loads(far_file.read_text()) | {"embedder": "someone-else@0123456789ab/dlib-5pt"}
    far_file.write_text(json.dumps(other))
    with pytest.raises(ConfigError, match="was measured with 'someone-else"):
        create_embedder(str(model), card=str(card))
