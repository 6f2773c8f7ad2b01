"""How fast are dlib's face embeddings: dlib itself vs faceshot's ONNX conversion, on the same chips.

    python benchmarks/embed_speed.py [--chips 64] [--threads 1 2]
    python benchmarks/embed_speed.py --lfw-devtest [--pairs N]   # decisions on LFW View 1 DevTest
    python benchmarks/embed_speed.py --int8                      # int8 quantisation: speed, vectors

Speed: faces per second for one face per call and for batches of 16 and 64, with 1 and with N
threads. dlib's side is ``compute_face_descriptor`` (what face_recognition calls); dlib's wheel runs it
on one core, so "N threads" for dlib means N processes, each with its own copy of the model. The
ONNX side is ``dlib-resnet-onnx`` with ``intra_op_num_threads = N``. One pass per chip on both sides
(no mirror image): the mirror-averaged embedders do twice the work on both sides alike.

``--lfw-devtest``: detects and aligns every image of ``pairsDevTest.txt`` once (HOG, the central face,
as the calibration does), embeds the chips with ``dlib-resnet`` and with ``dlib-resnet-onnx``, and
counts the pairs whose decision at the calibrated threshold differs.

Figures depend on the load of the machine: the script prints the load average before and after.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from faceshot import models
from faceshot.embed import create_embedder
from faceshot.embed.dlib_onnx import RESNET_FILE, DlibResnetOnnxEmbedder
from faceshot.onnx_graphs import available_cores
from faceshot.choice import central
from faceshot.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FACESHOT_DATASETS", ROOT.parent / "shared" / "datasets"))
TEST_IMAGES = ROOT / ".cache" / "test_images"


# --- chips ---------------------------------------------------------------------------------------

_engine: Engine | None = None


def _start_engine() -> None:
    global _engine
    _engine = Engine()


def _chip(path: str) -> np.ndarray | None:
    """The aligned chip of the central face of a photo, or ``None`` when no face is found."""
    assert _engine is not None
    image = _engine.load(path)
    faces = _engine.detector.detect(image)
    if not faces:
        return None
    return _engine.aligner.align(image, [central(faces, image.shape)])[0]


def chips_of(paths: list[Path], workers: int) -> list[np.ndarray | None]:
    with ProcessPoolExecutor(workers, initializer=_start_engine) as pool:
        return list(pool.map(_chip, map(str, paths), chunksize=8))


def sample_chips(count: int, workers: int) -> np.ndarray:
    lfw = sorted((DATASETS / "lfw" / "images").glob("*/*.jpg"))
    paths = lfw[:: max(1, len(lfw) // (count + count // 4))] if lfw else sorted(TEST_IMAGES.glob("*.jpg"))
    found = np.array([c for c in chips_of(paths, workers) if c is not None])
    if len(found) == 0:
        raise SystemExit("no face found: run `make test-images` or provide ../shared/datasets/lfw")
    return np.resize(found, (count, *found.shape[1:])).astype(np.uint8)  # repeats when too few


# --- dlib ----------------------------------------------------------------------------------------

_net = None


def _start_dlib() -> None:
    global _net
    _net = models.load("face_recognition_model_v1", RESNET_FILE)


def _dlib_batch(chips: np.ndarray) -> np.ndarray:
    assert _net is not None
    if len(chips) == 1:  # one face per call, as face_recognition.face_encodings does
        return np.array([_net.compute_face_descriptor(np.ascontiguousarray(chips[0]))])
    return np.array(_net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips]))


def dlib_rate(chips: np.ndarray, batch: int, processes: int) -> float:
    if processes == 1:
        _start_dlib()
        _dlib_batch(chips[:1])
        started = time.perf_counter()
        for i in range(0, len(chips), batch):
            _dlib_batch(chips[i : i + batch])
        return len(chips) / (time.perf_counter() - started)
    # Every process gets whole batches: at least two each, so none waits while another works.
    count = max(len(chips), 2 * processes * batch)
    chips = np.resize(chips, (count, *chips.shape[1:]))
    batches = [chips[i : i + batch] for i in range(0, count, batch)]
    # multiprocessing.Pool starts every worker, and runs the initializer (loading the model) in
    # each, before it takes work: loading stays out of the timing.
    with multiprocessing.get_context("fork").Pool(processes, initializer=_start_dlib) as pool:
        pool.map(_dlib_batch, [chips[:1]] * processes, chunksize=1)
        started = time.perf_counter()
        pool.map(_dlib_batch, batches, chunksize=1)
        return count / (time.perf_counter() - started)


# --- onnx ----------------------------------------------------------------------------------------


def onnx_rate(chips: np.ndarray, batch: int, threads: int, seconds: float = 2.0) -> float:
    embedder = DlibResnetOnnxEmbedder(mirror=False, threads=threads, batch_size=batch)
    run: Callable[[np.ndarray], object] = embedder.descriptors
    run(chips[:batch])  # start the session, warm the kernels
    done, started = 0, time.perf_counter()
    while True:
        for i in range(0, len(chips), batch):
            run(chips[i : i + batch])
        done += len(chips)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def speed(args: argparse.Namespace) -> None:
    chips = sample_chips(args.chips, workers=max(args.threads))
    print(f"{len(chips)} chips of 150x150; {available_cores()} cores; load average {_load()}")
    DlibResnetOnnxEmbedder(mirror=False).load()  # convert (or load the cache) before timing
    print(f"{'':14}{'threads':>8}{'dlib faces/s':>15}{'onnx faces/s':>15}{'ratio':>8}")
    for threads in args.threads:
        for batch in (1, 16, 64):
            label = "one face" if batch == 1 else f"batch of {batch}"
            theirs = dlib_rate(chips, batch, threads)
            ours = onnx_rate(chips, batch, threads)
            print(f"{label:14}{threads:>8}{theirs:>15.1f}{ours:>15.1f}{ours / theirs:>7.1f}x", flush=True)
    print(f"load average after: {_load()}")


# --- int8 ---------------------------------------------------------------------------------------


def int8(args: argparse.Namespace) -> None:
    """onnxruntime's dynamic int8 quantisation of the converted network: speed and vectors."""
    import tempfile

    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from faceshot.embed.dlib_onnx import onnx_model

    chips = sample_chips(args.chips, workers=max(args.threads))
    print(f"{len(chips)} chips; load average {_load()}")
    with tempfile.TemporaryDirectory() as folder:
        float_file, int8_file = Path(folder, "float.onnx"), Path(folder, "int8.onnx")
        float_file.write_bytes(onnx_model())
        quantize_dynamic(float_file, int8_file, weight_type=QuantType.QInt8)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        vectors = {}
        for label, path in (("float32", float_file), ("int8 (dynamic)", int8_file)):
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            session.run(None, {"chips": chips[:16]})
            started = time.perf_counter()
            out = np.concatenate([session.run(None, {"chips": chips[i : i + 16]})[0] for i in range(0, len(chips), 16)])
            rate = len(chips) / (time.perf_counter() - started)
            vectors[label] = out / np.linalg.norm(out, axis=1, keepdims=True)
            print(f"{label:16} 1 thread, batches of 16: {rate:.1f} faces/s")
    cosines = (vectors["float32"] * vectors["int8 (dynamic)"]).sum(1)
    print(f"int8 against float32: min cosine {cosines.min():.5f}, mean {cosines.mean():.5f}")
    print(f"load average after: {_load()}")


# --- LFW View 1 DevTest --------------------------------------------------------------------------


def _dlib_resnet(chips: np.ndarray) -> np.ndarray:
    return create_embedder("dlib-resnet").embed(chips)


def lfw_devtest(args: argparse.Namespace) -> None:
    from faceshot.evaluate.lfw import read_pairs
    from faceshot.match import Calibration

    lfw = DATASETS / "lfw"
    pairs = read_pairs(lfw / "pairsDevTest.txt", lfw / "images")
    if args.pairs:  # the first N same and the first N different pairs
        pairs = [p for p in pairs if p.same][: args.pairs] + [p for p in pairs if not p.same][: args.pairs]
    paths = sorted({p for pair in pairs for p in (pair.a, pair.b)})
    print(f"{len(pairs)} pairs, {len(paths)} images; load average {_load()}")
    started = time.perf_counter()
    found = chips_of(paths, max(args.threads))
    index: dict[Path, int] = {}
    chips: list[np.ndarray] = []
    for path, chip in zip(paths, found):
        if chip is not None:
            index[path] = len(chips)
            chips.append(chip)
    chips_array = np.array(chips)
    print(f"{len(chips)} faces found in {time.perf_counter() - started:.0f} s")

    started = time.perf_counter()
    workers = max(args.threads)
    parts = np.array_split(chips_array, workers * 8)
    with ProcessPoolExecutor(workers) as pool:
        theirs = np.concatenate(list(pool.map(_dlib_resnet, parts)))
    dlib_seconds = time.perf_counter() - started
    started = time.perf_counter()
    ours = create_embedder("dlib-resnet-onnx").embed(chips_array)
    onnx_seconds = time.perf_counter() - started
    print(f"dlib-resnet: {dlib_seconds:.1f} s ({workers} processes); dlib-resnet-onnx: {onnx_seconds:.1f} s")

    threshold = Calibration.bundled("dlib-resnet").threshold
    cosines = (ours * theirs).sum(1)
    score_differences, differ, right = [], 0, [0, 0]
    for pair in pairs:
        if pair.a not in index or pair.b not in index:
            continue  # no face: "different" for both embedders alike
        a, b = index[pair.a], index[pair.b]
        s_theirs, s_ours = float(theirs[a] @ theirs[b]), float(ours[a] @ ours[b])
        score_differences.append(abs(s_theirs - s_ours))
        differ += (s_theirs >= threshold) != (s_ours >= threshold)
        right[0] += (s_theirs >= threshold) == pair.same
        right[1] += (s_ours >= threshold) == pair.same
    scored = len(score_differences)
    print(f"vectors: min cosine {cosines.min():.9f} over {len(chips)} faces")
    print(f"scores: max |difference| {max(score_differences):.3g} over {scored} pairs with faces")
    print(f"decisions at threshold {threshold}: {differ} of {len(pairs)} pairs differ")
    print(f"correct (of the {scored} pairs with faces): dlib-resnet {right[0]}, dlib-resnet-onnx {right[1]}")
    print(f"load average after: {_load()}")


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chips", type=int, default=64, help="chips per measurement (default 64)")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=sorted({1, available_cores()}),
        help="thread counts (processes for dlib) to measure; default 1 and all cores",
    )
    parser.add_argument("--lfw-devtest", action="store_true", help="compare decisions on LFW View 1 DevTest")
    parser.add_argument("--pairs", type=int, default=0, help="with --lfw-devtest: only N same + N different pairs")
    parser.add_argument("--int8", action="store_true", help="time onnxruntime's dynamic int8 quantisation")
    args = parser.parse_args()
    if args.lfw_devtest:
        lfw_devtest(args)
    elif args.int8:
        int8(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
