"""MTCNN: weights read without torch, ONNX graphs equal to torch's networks, the detector on real photos.

Needs `make test-models` (MTCNN's graphs and facenet-pytorch 2.6.0's wheel in .cache/models, or
$FACESHOT_TEST_MODELS); torch (the train extra) for the comparison with the original networks.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceshot.detect import create_detector
from faceshot.detect import mtcnn_weights
from faceshot.detect.mtcnn import MtcnnDetector, nms
from faceshot.errors import ConfigError, ModelError

REPO = Path(__file__).resolve().parents[1]
MODELS = Path(os.environ.get("FACESHOT_TEST_MODELS", REPO / ".cache" / "models"))
WHEEL = "facenet_pytorch-2.6.0-py3-none-any.whl"


def _missing(what: str) -> None:
    # In CI a missing fetch step is a broken install, not a reason to skip (as in conftest).
    message = f"{what} is missing from {MODELS}: run `make test-models`"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def weight_files() -> dict[str, bytes]:
    """facenet-pytorch 2.6.0's pnet.pt, rnet.pt, onet.pt, read from its wheel."""
    if not (MODELS / WHEEL).is_file():
        _missing(WHEEL)
    with zipfile.ZipFile(MODELS / WHEEL) as archive:
        return {net: archive.read(f"facenet_pytorch/data/{net}.pt") for net in mtcnn_weights.NETWORKS}


@pytest.fixture(scope="module")
def detector() -> MtcnnDetector:
    if not all(mtcnn_weights.model_path(net, MODELS).is_file() for net in mtcnn_weights.NETWORKS):
        _missing("MTCNN's converted graphs")
    return create_detector("mtcnn", cache_dir=str(MODELS))  # type: ignore[return-value]


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# --- reading the weights --------------------------------------------------------------------------


def test_restricted_unpickler_reads_the_three_files_as_torch_does(weight_files):
    torch = pytest.importorskip("torch")
    for net, data in weight_files.items():
        ours = mtcnn_weights.read_state_dict(data)
        theirs = torch.load(io.BytesIO(data), weights_only=True)
        assert list(ours) == list(theirs)
        for name, tensor in theirs.items():
            assert ours[name].dtype == np.float32 and ours[name].shape == tuple(tensor.shape)
            assert np.array_equal(ours[name], tensor.numpy()), (net, name)


def test_restricted_unpickler_reads_torchs_zip_format_too(weight_files):
    torch = pytest.importorskip("torch")
    state = torch.load(io.BytesIO(weight_files["pnet"]), weights_only=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)  # torch's current (zip) format
    ours = mtcnn_weights.read_state_dict(buffer.getvalue())
    assert all(np.array_equal(ours[name], tensor.numpy()) for name, tensor in state.items())


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo owned",))


@pytest.mark.parametrize("payload", [
    pickle.dumps({"conv1.weight": _Exploit()}, protocol=2),
    pickle.dumps(_Exploit(), protocol=2),
])
def test_restricted_unpickler_refuses_any_other_global(payload):
    with pytest.raises(ModelError, match="refusing (posix|os).system"):
        mtcnn_weights.read_state_dict(payload)


def test_restricted_unpickler_refuses_a_legacy_file_that_calls_a_function(weight_files):
    # The real file with its OrderedDict global swapped for os.system: refused before it runs.
    data = weight_files["pnet"].replace(b"ccollections\nOrderedDict\n", b"cos\nsystem\n", 1)
    assert data != weight_files["pnet"]
    with pytest.raises(ModelError, match="refusing os.system"):
        mtcnn_weights.read_state_dict(data)


def test_truncated_and_foreign_files_are_model_errors(weight_files):
    with pytest.raises(ModelError):
        mtcnn_weights.read_state_dict(weight_files["pnet"][: len(weight_files["pnet"]) // 2])
    with pytest.raises(ModelError):
        mtcnn_weights.read_state_dict(b"not a pickle at all")
    with pytest.raises(ModelError, match="no torch magic number"):
        mtcnn_weights.read_state_dict(pickle.dumps({"conv1.weight": 1}, protocol=2))
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save([1, 2, 3], buffer)
    with pytest.raises(ModelError, match="dict of tensors"):
        mtcnn_weights.read_state_dict(buffer.getvalue())


# --- the ONNX graphs against torch ----------------------------------------------------------------


def _torch_networks(weights: dict[str, dict[str, np.ndarray]]):
    """facenet-pytorch 2.6.0's PNet, RNet and ONet (models/mtcnn.py), loaded with the same arrays."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class PNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
            self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
            self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
            self.conv4_1, self.softmax4_1 = nn.Conv2d(32, 2, 1), nn.Softmax(dim=1)
            self.conv4_2 = nn.Conv2d(32, 4, 1)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
            return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))

    class RNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
            self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
            self.dense5_1, self.softmax5_1 = nn.Linear(128, 2), nn.Softmax(dim=1)
            self.dense5_2 = nn.Linear(128, 4)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).contiguous()
            x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
            return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))

    class ONet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
            self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
            self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
            self.dense6_2, self.dense6_3 = nn.Linear(256, 4), nn.Linear(256, 10)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).contiguous()
            x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
            return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))

    networks = {"pnet": PNet(), "rnet": RNet(), "onet": ONet()}
    for net, module in networks.items():
        module.load_state_dict({k: torch.from_numpy(v) for k, v in weights[net].items()})
        module.eval()
    return networks


@pytest.mark.parametrize("net, shapes", [
    ("pnet", [(1, 3, 12, 12), (2, 3, 31, 47), (1, 3, 120, 95)]),  # any H×W, odd sizes (ceil-mode pooling)
    ("rnet", [(5, 3, 24, 24)]),
    ("onet", [(5, 3, 48, 48)]),
])
def test_onnx_graphs_equal_torchs_networks(weight_files, detector, net, shapes):
    torch = pytest.importorskip("torch")
    weights = {name: mtcnn_weights.read_state_dict(data) for name, data in weight_files.items()}
    module = _torch_networks(weights)[net]
    rng = np.random.default_rng(16)
    for shape in shapes:
        batch = rng.uniform(-1, 1, shape).astype(np.float32)  # the range of (pixel − 127.5) / 128
        ours = detector._run(net, batch)
        with torch.no_grad():
            theirs = [t.numpy() for t in module(torch.from_numpy(batch))]
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=1e-4)


# --- the cache and the fetch command --------------------------------------------------------------


def test_install_writes_stamped_graphs_and_refuses_other_weights(tmp_path, weight_files):
    written = mtcnn_weights.install(MODELS / WHEEL, tmp_path)
    assert [p.name for p in written] == [mtcnn_weights.model_path(n, tmp_path).name for n in mtcnn_weights.NETWORKS]
    assert mtcnn_weights.onnx_model("onet", tmp_path)  # reads back, stamp checked
    # A damaged graph is refused, naming the command that makes it again.
    path = mtcnn_weights.model_path("rnet", tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="faceshot models fetch mtcnn"):
        mtcnn_weights.onnx_model("rnet", tmp_path)
    # A wheel whose weights are not 2.6.0's is refused by their SHA-256.
    other = tmp_path / "other.whl"
    with zipfile.ZipFile(other, "w") as archive:
        for net, blob in weight_files.items():
            archive.writestr(f"facenet_pytorch/data/{net}.pt", blob + (b"\0" if net == "onet" else b""))
    with pytest.raises(ModelError, match="not facenet-pytorch 2.6.0's"):
        mtcnn_weights.install(other, tmp_path / "other")
    with pytest.raises(ModelError, match="cannot read"):
        mtcnn_weights.install(tmp_path / "missing.whl", tmp_path)


def test_fetch_command_with_a_wheel_prints_the_files(tmp_path, weight_files):
    from typer.testing import CliRunner

    from faceshot.cli import app

    result = CliRunner().invoke(app, ["models", "fetch", "mtcnn", "--wheel", str(MODELS / WHEEL), "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert [Path(line).name for line in result.output.split()] == [
        mtcnn_weights.model_path(n).name for n in mtcnn_weights.NETWORKS
    ]
    assert all(mtcnn_weights.model_path(n, tmp_path).is_file() for n in mtcnn_weights.NETWORKS)
    result = CliRunner().invoke(app, ["models", "fetch", "retinaface"])
    assert result.exit_code == 2 and "unknown model 'retinaface'; choose one of: mtcnn" in result.output


def test_a_missing_model_is_a_model_error_naming_the_command(tmp_path, images):
    detector = create_detector("mtcnn", cache_dir=str(tmp_path))
    with pytest.raises(ModelError, match=f"run: faceshot models fetch mtcnn --cache-dir {tmp_path}"):
        detector.detect(_rgb(images / "obama.jpg"))


def test_options_are_checked():
    from faceshot.spec import build_detector

    assert build_detector("mtcnn:min_face=40,confidence=0.9").min_face == 40  # type: ignore[attr-defined]
    for text in ("mtcnn:min_face=8", "mtcnn:min_face=20.5", "mtcnn:factor=1.2", "mtcnn:confidence=1.5", "mtcnn:threads=0"):
        with pytest.raises(ConfigError):
            build_detector(text)
    with pytest.raises(ConfigError, match="its options: cache_dir, confidence, factor, landmarks, max_side, min_face, p_threshold, r_threshold, threads"):
        build_detector("mtcnn:upsample=1")


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [2, 2, 8, 8]], float)
    scores = np.array([0.9, 0.95, 0.5, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [1, 3, 2]  # [0] overlaps [1] by 0.68; [3] is inside both
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [1, 2]  # "min": [3] lies wholly in [1]


# --- the detector on real photos ------------------------------------------------------------------


def test_one_face_in_each_package_photo_where_hog_finds_it(detector, images):
    hog = create_detector("hog")
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"):
        image = _rgb(images / name)
        faces = detector.detect(image)
        # obama.jpg also gives a 55-px chair back at confidence 0.815 (facenet-pytorch too): MTCNN's
        # false detections sit below the 0.99 its real faces reach here.
        sure = [face for face in faces if face.score >= 0.99]
        assert len(sure) == 1, (name, faces)
        assert faces[0] == sure[0]  # largest first
        assert sure[0].box.iou(hog.detect(image)[0].box) >= 0.5, name
        assert len(sure[0].landmarks) == 5  # dlib's five, placed on the box
        assert all(sure[0].box.left <= x <= sure[0].box.right and sure[0].box.top <= y <= sure[0].box.bottom
                   for x, y in sure[0].landmarks)


def test_two_faces_side_by_side_in_the_photos_coordinates(detector, images):
    a, b = Image.open(images / "obama2.jpg").convert("RGB"), Image.open(images / "biden.jpg").convert("RGB")
    b = b.resize((round(b.width * a.height / b.height), a.height))
    both = Image.new("RGB", (a.width + b.width, a.height))
    both.paste(a, (0, 0))
    both.paste(b, (a.width, 0))
    faces = detector.detect(np.asarray(both))
    hog = create_detector("hog").detect(np.asarray(both))
    assert len(faces) == 2 and len(hog) == 2
    assert sorted(f.box.left < a.width for f in faces) == [False, True]  # one in each half
    for face in faces:
        assert max(face.box.iou(h.box) for h in hog) >= 0.5
    # MTCNN's own five points (eyes, nose tip, mouth corners) lie in their box, eyes above the mouth.
    for found in detector.locate(np.asarray(both)):
        (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = found.points
        assert found.box.left <= lx < rx <= found.box.right and max(ly, ry) < ny < min(mly, mry) <= found.box.bottom
        assert 0.99 <= found.confidence <= 1.0


def test_verification_through_mtcnn(images):
    import faceshot

    detector = f"mtcnn:cache_dir={MODELS}"
    if not mtcnn_weights.model_path("onet", MODELS).is_file():
        _missing("MTCNN's converted graphs")
    same = faceshot.verify(images / "obama.jpg", images / "obama2.jpg", detector=detector)
    other = faceshot.verify(images / "obama.jpg", images / "biden.jpg", detector=detector)
    assert same.same and not other.same
    # The embeddings of MTCNN's faces are those of HOG's faces, within the embedder's noise.
    hog = faceshot.verify(images / "obama.jpg", images / "obama2.jpg", detector="hog")
    assert abs(same.score - hog.score) < 0.02


def test_pickled_detector_starts_its_own_sessions(detector, images):
    image = _rgb(images / "obama2.jpg")
    first = detector.detect(image)
    copy = pickle.loads(pickle.dumps(detector))
    assert copy._sessions == {}
    assert copy.detect(image) == first


def test_gray_and_tiny_images(detector):
    assert detector.detect(np.zeros((8, 8, 3), np.uint8)) == []  # smaller than P-Net's window
    assert detector.detect(np.full((200, 300, 3), 128, np.uint8)) == []
    with pytest.raises(ConfigError, match="RGB uint8"):
        detector.locate(np.zeros((100, 100), np.uint8))


def test_annotated_scenes_recall_and_precision(detector, datasets):
    from conftest import scene_detection

    result, precision = scene_detection(detector.detect, datasets, "mtcnn")
    assert result.recall >= 0.9
    assert precision >= 0.8


def test_same_faces_as_facenet_pytorch(detector, weight_files, images, datasets, monkeypatch, tmp_path):
    """facenet-pytorch 2.6.0's own ``detect_face`` (from its wheel, run by torch on the same weights)
    finds the same boxes, confidences and landmarks. That package cannot be installed beside faceshot
    (its pins), so its module is loaded alone; torchvision's ``batched_nms``, which it imports, is
    given by a few lines of torch (one image per call: plain greedy NMS)."""
    import sys
    import types

    torch = pytest.importorskip("torch")

    def batched_nms(boxes, scores, idxs, threshold):
        order, keep = torch.argsort(scores, descending=True), []
        while order.numel():
            i, order = order[0], order[1:]
            keep.append(int(i))
            lt = torch.maximum(boxes[i, :2], boxes[order, :2])
            rb = torch.minimum(boxes[i, 2:], boxes[order, 2:])
            inter = (rb - lt).clamp(min=0).prod(dim=1)
            area = (boxes[:, 2:] - boxes[:, :2]).prod(dim=1)
            order = order[inter / (area[i] + area[order] - inter) <= threshold]
        return torch.as_tensor(keep, dtype=torch.long)

    stubs = {"torchvision": types.ModuleType("torchvision"), "torchvision.ops": types.ModuleType("torchvision.ops"),
             "torchvision.ops.boxes": types.ModuleType("torchvision.ops.boxes"),
             "torchvision.transforms": types.ModuleType("torchvision.transforms"),
             "torchvision.transforms.functional": types.ModuleType("torchvision.transforms.functional")}
    stubs["torchvision.ops.boxes"].batched_nms = batched_nms  # type: ignore[attr-defined]
    stubs["torchvision.transforms"].functional = stubs["torchvision.transforms.functional"]  # type: ignore[attr-defined]
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    source = tmp_path / "detect_face.py"
    with zipfile.ZipFile(MODELS / WHEEL) as archive:
        source.write_bytes(archive.read("facenet_pytorch/models/utils/detect_face.py"))
    namespace: dict = {"__name__": "facenet_detect_face"}
    exec(compile(source.read_text(), str(source), "exec"), namespace)

    networks = _torch_networks({n: mtcnn_weights.read_state_dict(d) for n, d in weight_files.items()})
    paths = [images / "obama.jpg", images / "insightface_t1.jpg", datasets / "scenes" / "dlib_2008_002470.jpg"]
    for path in paths:
        image = _rgb(path)
        with torch.no_grad():
            boxes, points = namespace["detect_face"](image, 20, networks["pnet"], networks["rnet"], networks["onet"],
                                                     [0.6, 0.7, 0.7], 0.709, "cpu")
        theirs = sorted(zip(np.asarray(boxes[0], float).tolist(), np.asarray(points[0], float).tolist()), key=lambda t: -t[0][4])
        ours = detector.locate(image)
        assert len(ours) == len(theirs) >= 1, path.name
        for found, (box, marks) in zip(ours, theirs):
            clipped = [max(box[0], 0), max(box[1], 0), min(box[2], image.shape[1]), min(box[3], image.shape[0])]
            assert np.abs(np.array([found.box.left, found.box.top, found.box.right, found.box.bottom]) - clipped).max() <= 1
            assert abs(found.confidence - box[4]) < 1e-3
            np.testing.assert_allclose(found.points, marks, atol=0.5)


def test_concurrent_detections_equal_the_single_thread_ones(detector, images):
    from concurrent.futures import ThreadPoolExecutor

    fresh = create_detector("mtcnn", cache_dir=str(MODELS))  # its sessions are started by the threads
    photos = [_rgb(images / name) for name in ("obama2.jpg", "insightface_t1.jpg")]
    single = [detector.detect(image) for image in photos]
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(fresh.detect, photos * 3))
    assert found == single * 3


def test_a_failed_download_is_a_model_error_that_names_the_wheel_option(tmp_path):
    from faceshot.models_fetch import _download

    # pip refuses the requirement before reaching any network.
    with pytest.raises(ModelError, match="pip could not download .*--wheel FILE"):
        _download("facenet-pytorch==", tmp_path)


def test_worker_processes_detect_with_mtcnn(detector, images):
    from faceshot.cli import app
    from typer.testing import CliRunner

    files = [str(images / name) for name in ("obama2.jpg", "biden.jpg", "insightface_t1.jpg")]
    result = CliRunner().invoke(app, ["detect", *files, "--detector", f"mtcnn:cache_dir={MODELS}", "--workers", "2"])
    assert result.exit_code == 0, result.output
    rows = result.output.strip().splitlines()[1:]
    counts = {f: sum(row.startswith(f + ",") for row in rows) for f in files}
    assert counts == {f: len(detector.detect(_rgb(Path(f)))) for f in files}


def test_large_photos_are_searched_downscaled_in_the_photos_coordinates(detector, images):
    from faceshot.results import Box

    image = Image.open(images / "obama2.jpg").convert("RGB")  # 626 × 1200
    large = np.asarray(image.resize((image.width * 4, image.height * 4), Image.BILINEAR))  # searched at 2,000 px
    (face,) = [f for f in detector.locate(np.asarray(image)) if f.confidence >= 0.99]
    (big,) = [f for f in detector.locate(large) if f.confidence >= 0.99]
    b = face.box
    assert big.box.iou(Box(b.left * 4, b.top * 4, b.right * 4, b.bottom * 4)) >= 0.8
    np.testing.assert_allclose(np.array(big.points) / 4, face.points, atol=6)
    with pytest.raises(ConfigError, match="max_side"):
        create_detector("mtcnn", max_side=10)


def test_min_face_holds_in_a_large_photo_searched_in_tiles(detector, datasets):
    """About 25 faces of about 20 px in a 4000 × 700 photo. The pyramid's first level for
    ``min_face=20`` (0.6×, 2400 px) is longer than ``max_side``: the photo is searched at that scale
    in tiles, not on a copy downscaled to 2,000 px, where those faces are 10 px and lost."""
    from PIL import Image

    from conftest import GROUP_AT, group_strip

    strip = group_strip(datasets)
    faces = detector.detect(strip)
    assert len(faces) >= 20
    x, y = GROUP_AT
    assert all(x <= f.box.left < f.box.right <= x + 640 and y <= f.box.top < f.box.bottom <= y + 405 for f in faces)
    assert all(f.box.left - 5 <= px <= f.box.right + 5 for f in faces for px, _ in f.landmarks)
    downscaled = np.asarray(Image.fromarray(strip).resize((2000, 350), Image.BOX))  # what max_side alone did
    assert len(detector.locate(downscaled)) < 5
