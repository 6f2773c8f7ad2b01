"""Several threads share one engine: detections and embeddings equal the single-thread ones.

dlib's detectors and shape predictor are not thread-safe (one HOG detector called from 3 threads at
once crashed the process), so each thread loads its own copy (:func:`faceshot.models.load`);
onnxruntime sessions are shared. Bulk worker processes get their share of the cores.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from faceshot.bulk import _start_worker
from faceshot.detect import create_detector, detectors
from faceshot.engine import Engine
from faceshot.onnx_graphs import available_cores, set_thread_budget, thread_budget
from faceshot.spec import EngineSpec, build_detector

THREADS = 3


@pytest.fixture(scope="module")
def photos(images) -> list[np.ndarray]:
    """Small copies (the cnn detector takes seconds per photo): a group photo and a portrait."""
    group = Image.open(images / "insightface_t1.jpg").convert("RGB").resize((400, 277))
    portrait = Image.open(images / "obama.jpg").convert("RGB").resize((200, 250))
    return [np.asarray(group), np.asarray(portrait)]


def _concurrently(function, items: list, rounds: int) -> list[list]:
    """``function(item)`` for every item, ``rounds`` times, on THREADS threads at once; results per round."""
    with ThreadPoolExecutor(THREADS) as pool:
        futures = [[pool.submit(function, item) for item in items] for _ in range(rounds)]
        return [[future.result() for future in round_] for round_ in futures]


# mtcnn and yunet need files the user fetches or brings: tests/test_mtcnn.py and test_yunet.py check them.
@pytest.mark.parametrize("name", sorted(set(detectors.names()) - {"mtcnn", "yunet"}))
def test_concurrent_detections_equal_the_single_thread_ones(name, photos):
    detector = create_detector(name)
    # cnn (dlib's own network) takes seconds a photo: it gets the portrait only.
    items = photos[1:] if name == "cnn" else photos
    single = [detector.detect(image) for image in items]
    assert all(single)  # every photo has faces: an empty answer would prove nothing
    for found in _concurrently(detector.detect, items, rounds=THREADS if name != "cnn" else 1):
        assert found == single


def test_concurrent_detections_through_a_fallback_chain(photos):
    chain = build_detector("hog:upsample=0>cnn-onnx")
    single = [chain.detect(image) for image in photos]
    for found in _concurrently(chain.detect, photos, rounds=THREADS):
        assert found == single


def test_a_shared_engine_embeds_the_same_from_several_threads(photos):
    engine = Engine()
    single = [engine.embed(image) for image in photos]
    for found in _concurrently(engine.embed, photos, rounds=THREADS):
        for vectors, expected in zip(found, single):
            np.testing.assert_allclose(vectors, expected, atol=1e-6)


def test_bulk_workers_get_their_share_of_the_cores():
    try:
        set_thread_budget(3)
        assert thread_budget() == 3
        with pytest.raises(ValueError):
            set_thread_budget(0)
    finally:
        set_thread_budget(None)
    assert thread_budget() == available_cores()
    with ProcessPoolExecutor(1, initializer=_start_worker, initargs=(EngineSpec("cnn-onnx"), 2)) as pool:
        assert pool.submit(thread_budget).result() == 2
