"""dlib-resnet-onnx: dlib's face ResNet converted to ONNX gives dlib's vectors, on real faces.

The equivalence is checked against dlib itself (``compute_face_descriptor``) on the chips of real
photos and their mirror images; the converted model lives in a temporary cache directory.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from faceshot import models, onnx_graphs
from faceshot.embed import create_embedder, dlib_onnx, embedders
from faceshot.embed.dlib_format import read_network
from faceshot.embed.dlib_onnx import DlibResnetOnnxEmbedder, onnx_model
from faceshot.engine import Engine
from faceshot.errors import ModelError
from faceshot.match import Calibration

MIN_COSINE = 0.9999
LFW_IMAGES = 16  # a spread of LFW photos, beside the four package photos


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("faceshot-cache")


@pytest.fixture(scope="module")
def chips(images, request):
    """Aligned chips of every face in the package photos and in some LFW photos (when present)."""
    engine = Engine()
    paths = [images / name for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")]
    try:
        datasets = request.getfixturevalue("datasets")
    except pytest.skip.Exception:
        datasets = None
    if datasets is not None:
        lfw = sorted((datasets / "lfw" / "images").glob("*/*.jpg"))
        paths += lfw[:: max(1, len(lfw) // LFW_IMAGES)][:LFW_IMAGES]
    found = []
    for path in paths:
        image = engine.load(path)
        faces = engine.detector.detect(image)
        if faces:
            found.append(engine.aligner.align(image, faces))
    return np.concatenate(found)


def _dlib_descriptors(chips: np.ndarray) -> np.ndarray:
    net = models.load("face_recognition_model_v1", dlib_onnx.RESNET_FILE)
    return np.array(net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips]), dtype=np.float32)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_converted_descriptors_match_dlibs_on_real_faces_and_mirrors(chips, cache):
    both = np.concatenate([chips, np.ascontiguousarray(chips[:, :, ::-1])])
    ours = DlibResnetOnnxEmbedder(mirror=False, cache_dir=cache).descriptors(both)
    theirs = _dlib_descriptors(both)
    cosines = _cosines(ours, theirs)
    difference = float(np.abs(ours - theirs).max())
    print(f"\n{len(both)} chips: min cosine {cosines.min():.9f}, max |difference| {difference:.3g}")
    assert len(chips) >= 4
    assert cosines.min() >= MIN_COSINE, cosines
    assert difference < 1e-4


def test_mirror_averaged_vectors_match_the_default_embedder(chips, cache):
    few = chips[:4]
    ours = create_embedder("dlib-resnet-onnx", cache_dir=cache).embed(few)
    theirs = create_embedder("dlib-resnet").embed(few)
    assert ours.shape == (4, 128) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * theirs).sum(1).min() >= MIN_COSINE


def test_batches_and_thread_counts_do_not_change_the_vectors(chips, cache):
    reference = DlibResnetOnnxEmbedder(mirror=False, cache_dir=cache, threads=1, batch_size=64).embed(chips)
    other = DlibResnetOnnxEmbedder(mirror=False, cache_dir=cache, threads=2, batch_size=3).embed(chips)
    assert (reference * other).sum(1).min() >= 0.999999
    one = DlibResnetOnnxEmbedder(mirror=False, cache_dir=cache).embed(chips[:1])
    assert float(one[0] @ reference[0]) >= 0.999999


def test_shares_the_vector_space_and_calibration_of_dlib_resnet():
    assert {"dlib-resnet-onnx", "dlib-resnet-onnx-single"} <= set(embedders.names())
    mirrored, single = create_embedder("dlib-resnet-onnx"), create_embedder("dlib-resnet-onnx-single")
    assert (mirrored.name, mirrored.space) == ("dlib-resnet-onnx", "dlib-resnet")
    assert (single.name, single.space) == ("dlib-resnet-onnx-single", "dlib-resnet-single")
    assert create_embedder("dlib-resnet").space == "dlib-resnet"
    assert mirrored.calibration == Calibration.bundled("dlib-resnet") is not None
    assert mirrored.aligner == "dlib-5pt" and mirrored.dim == 128


def test_engine_verifies_with_the_converted_model(images, cache):
    engine = Engine(embedder=DlibResnetOnnxEmbedder(cache_dir=cache))
    assert engine.verify(images / "obama.jpg", images / "obama2.jpg").same
    assert not engine.verify(images / "obama.jpg", images / "biden.jpg").same


def test_wrong_chips_are_refused_and_no_chips_give_no_vectors(cache):
    embedder = DlibResnetOnnxEmbedder(cache_dir=cache)
    assert embedder.embed(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    with pytest.raises(ValueError, match="150, 150, 3"):
        embedder.embed(np.zeros((1, 112, 112, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        embedder.embed(np.zeros((1, 150, 150, 3), np.float32))


# --- the cache ---------------------------------------------------------------------------------


def _cached(directory):
    (path,) = directory.glob("dlib_resnet_*.onnx")
    return path


def test_conversion_is_cached_and_reused(tmp_path, monkeypatch):
    first = onnx_model(directory=tmp_path)
    path = _cached(tmp_path)
    assert path.read_bytes() == first
    assert path.name == f"dlib_resnet_{onnx_graphs.file_sha256(models.model_path(dlib_onnx.RESNET_FILE))[:16]}.onnx"
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed into place

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again instead of loading the cache")

    monkeypatch.setattr(dlib_onnx, "convert", no_conversion)
    assert onnx_model(directory=tmp_path) == first


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "garbage", "other source"])
def test_a_damaged_or_foreign_cache_file_is_rebuilt(tmp_path, damage):
    good = onnx_model(directory=tmp_path)
    path = _cached(tmp_path)
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "flipped byte":  # inside the weights: still a readable model, but not ours
        data = bytearray(good)
        data[len(data) // 2] ^= 0x40
        path.write_bytes(bytes(data))
    elif damage == "garbage":
        path.write_bytes(b"not a model")
    else:  # a valid model made from another .dat, under this file's name
        model = dlib_onnx.convert()
        onnx_graphs.stamp(model, "0" * 64, dlib_onnx.CONVERTER_VERSION)
        path.write_bytes(model.SerializeToString())
    assert onnx_model(directory=tmp_path) == good
    assert path.read_bytes() == good


def test_an_unwritable_cache_still_gives_a_model(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    assert onnx_graphs.is_valid(
        onnx_model(directory=blocker / "cache"),
        onnx_graphs.file_sha256(models.model_path(dlib_onnx.RESNET_FILE)),
        dlib_onnx.CONVERTER_VERSION,
    )


# --- wrong model files -------------------------------------------------------------------------


def test_a_truncated_model_file_is_a_model_error(tmp_path):
    source = models.model_path(dlib_onnx.RESNET_FILE).read_bytes()
    for cut in (10, 300, len(source) // 2, len(source) - 3):
        truncated = tmp_path / f"cut{cut}.dat"
        truncated.write_bytes(source[:cut])
        with pytest.raises(ModelError, match="cut"):
            read_network(truncated)
    with pytest.raises(ModelError, match="ends"):
        dlib_onnx.convert(truncated)


def test_other_files_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not dlib's face recognition ResNet"):  # another network: the CNN detector
        dlib_onnx.convert(models.model_path("mmod_human_face_detector.dat"))
    with pytest.raises(ModelError):  # a dlib file that is not a network at all
        read_network(models.model_path("shape_predictor_5_face_landmarks.dat"))
    with pytest.raises(ModelError, match="cannot read"):
        read_network(tmp_path / "missing.dat")
    extra = tmp_path / "extra.dat"
    extra.write_bytes(models.model_path(dlib_onnx.RESNET_FILE).read_bytes() + b"\x01\x00")
    with pytest.raises(ModelError, match="follow"):
        read_network(extra)


def test_reader_gives_layers_and_weights(tmp_path):
    network = read_network(models.model_path(dlib_onnx.RESNET_FILE))
    assert network.loss == "loss_metric_2"
    assert (network.input.rows, network.input.columns) == (150, 150)
    assert np.allclose(network.input.mean, (122.782, 117.001, 104.298), atol=1e-3)
    first, last = network.layers[0], network.layers[-1]
    assert first.filters.shape == (32, 3, 7, 7) and first.stride == (2, 2) and first.padding == (0, 0)
    assert last.weights.shape == (256, 128) and last.bias is None
    assert sum(getattr(layer, "filters", np.zeros(0)).size for layer in network.layers) > 5_000_000


def test_missing_onnxruntime_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ModelError, match="pip install onnxruntime onnx"):
        onnx_graphs.onnxruntime_module()
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ModelError, match="pip install onnxruntime onnx"):
        onnx_model(directory=None)
