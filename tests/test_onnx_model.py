"""Trained networks exported to ONNX, loaded back as embedders; bad model files fail clearly."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from faceshot.embed import create_embedder
from faceshot.errors import ModelError

torch = pytest.importorskip("torch")

from faceshot.embed.onnx_model import OnnxModelEmbedder, prepare_image  # noqa: E402
from faceshot.train.backbones import create_backbone  # noqa: E402
from faceshot.train.export import export_model, to_onnx  # noqa: E402
from faceshot.train.trainer import embed_inputs  # noqa: E402


def trained_like_cnn(size: int = 28, channels: int = 1):
    """A small-cnn with weights and batch-norm statistics that are not the defaults (as after training)."""
    torch.manual_seed(0)
    model = create_backbone("small-cnn", size=size, channels=channels)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # moves the running means and variances away from 0 and 1
            model(torch.randint(0, 256, (16, size, size, channels), dtype=torch.uint8))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def test_small_cnn_onnx_gives_the_torch_vectors(tmp_path, datasets):
    model = trained_like_cnn()
    path = export_model(model, tmp_path / "glyphs.onnx", properties={"loss": "triplet"})
    embedder = create_embedder(str(path))
    assert isinstance(embedder, OnnxModelEmbedder)
    assert embedder.name == "glyphs" and embedder.dim == 64 and embedder.aligner == "whole-image"
    assert embedder.space.startswith("glyphs@") and embedder.props["faceshot.loss"] == "triplet"
    files = sorted((datasets / "omniglot" / "all_runs_20way_oneshot" / "run01" / "training").glob("*.png"))[:6]
    images = np.stack([prepare_image(f, 28, 1) for f in files])
    expected = embed_inputs(model, images)
    got = embedder.embed_files(files)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1, atol=1e-6)
    with pytest.raises(ValueError, match="uint8 images of shape"):
        embedder.embed(np.zeros((1, 32, 32, 1), np.uint8))


def test_colour_cnn_round_trip(tmp_path):
    model = trained_like_cnn(size=32, channels=3)
    embedder = OnnxModelEmbedder(export_model(model, tmp_path / "rgb.onnx"))
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(embedder.embed(images), embed_inputs(model, images), atol=1e-5)
    assert embedder.dim == 256  # 64 filters × 2 × 2 after four poolings of 32


def test_face_adapter_runs_over_the_base_embedder(tmp_path, images, engine):
    torch.manual_seed(0)
    adapter = create_backbone("face-adapter", dim_in=128)
    with torch.no_grad():
        adapter.outer.weight.normal_(0, 0.1)  # not the identity it starts as
    path = export_model(adapter, tmp_path / "adapter.onnx")
    embedder = create_embedder(str(path), threads=1)
    assert embedder.aligner == "dlib-5pt" and embedder.dim == 128 and embedder.base.name == "dlib-resnet-onnx"
    base = engine.embed(images / "obama.jpg")
    np.testing.assert_allclose(embedder.embed_vectors(base), embed_inputs(adapter, base), atol=1e-5)
    # Through an engine: detect → align → dlib → adapter, and a verification with an explicit threshold.
    from faceshot.engine import Engine

    adapted = Engine(embedder=embedder)
    np.testing.assert_allclose(adapted.embed(images / "obama.jpg"), embed_inputs(adapter, base), atol=1e-4)
    assert adapted.verify(images / "obama.jpg", images / "obama2.jpg", threshold=0.9).same


def test_a_file_that_is_not_a_model_is_a_model_error(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage that is not protobuf" * 10)
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        create_embedder(str(broken))
    with pytest.raises(ModelError, match="cannot read model"):
        create_embedder(str(tmp_path / "absent.onnx"))
    good = export_model(trained_like_cnn(), tmp_path / "good.onnx").read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(ModelError):
        create_embedder(str(truncated))


def test_an_onnx_model_without_faceshot_metadata_is_refused(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (tmp_path / "plain.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(ModelError, match="not one made by `faceshot train`.*faceshot.format"):
        create_embedder(str(tmp_path / "plain.onnx"))


def test_metadata_that_contradicts_the_graph_is_refused(tmp_path):
    from onnx import helper

    proto = to_onnx(trained_like_cnn(), "liar")
    helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, "faceshot.size": "32"})
    (tmp_path / "liar.onnx").write_bytes(proto.SerializeToString())
    with pytest.raises(ModelError, match="metadata says uint8 images of 32×32×1"):
        create_embedder(str(tmp_path / "liar.onnx"))
    helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, "faceshot.format": "99"})
    (tmp_path / "future.onnx").write_bytes(proto.SerializeToString())
    with pytest.raises(ModelError, match="format 99"):
        create_embedder(str(tmp_path / "future.onnx"))


def test_importing_faceshot_does_not_import_torch():
    code = "import sys, faceshot, faceshot.train, faceshot.evaluate.fewshot, faceshot.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_gallery_built_with_a_trained_model_records_it_and_refuses_others(tmp_path, images):
    from faceshot.engine import Engine
    from faceshot.errors import EmbedderMismatchError
    from faceshot.gallery import Gallery

    torch.manual_seed(1)
    adapter = create_backbone("face-adapter", dim_in=128)
    embedder = create_embedder(str(export_model(adapter, tmp_path / "office.onnx")), threads=1)
    with Gallery(tmp_path / "g.db", engine=Engine(embedder=embedder)) as gallery:
        gallery.enroll("obama", images / "obama.jpg")
        assert gallery.store.embedder == embedder.space == f"office@{embedder.sha256[:12]}"
        found = gallery.identify(images / "obama2.jpg", threshold=0.9)
        assert found[0].identity == "obama"
    with pytest.raises(EmbedderMismatchError):
        Gallery(tmp_path / "g.db", engine=Engine())
