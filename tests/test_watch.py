"""``faceshot watch`` on small real inputs: a live camera kept in real time, an HTTP MJPEG stream,
broken files, a stream that stops, and a track that must not carry a name onto someone else.

The videos here are made by the tests from the package-shipped photos (PyAV encodes them); the
real clips are in test_watch_videos.py.
"""

from __future__ import annotations

import http.server
import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

pytest.importorskip("av")
pytest.importorskip("trackers")

import av  # noqa: E402

from faceshot import Engine, VideoError  # noqa: E402
from faceshot.cli import app  # noqa: E402
from faceshot.detect import Detector  # noqa: E402
from faceshot.gallery import Gallery  # noqa: E402
from faceshot.video import Frame, Watcher, open_source  # noqa: E402
from faceshot.video.tracks import FaceTracker, Sample, face_quality  # noqa: E402

FPS = 30


def frame_of(path: Path, width: int = 480) -> np.ndarray:
    """The photo scaled to ``width`` (even sides), RGB."""
    image = Image.open(path).convert("RGB")
    height = round(image.height * width / image.width) // 2 * 2
    return np.asarray(image.resize((width, height)))


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, images):
    db = tmp_path_factory.mktemp("watch") / "gallery.db"
    with Gallery(db) as opened:
        opened.enroll("Barack Obama", images / "obama.jpg")
        opened.enroll("Joe Biden", images / "biden.jpg", groups=["vip"])
        yield opened


@pytest.fixture(scope="module")
def clip(tmp_path_factory, images) -> Path:
    """A 2-second 30 fps H.264 clip: obama2.jpg for a second, then biden.jpg in the same place."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    obama, biden = frame_of(images / "obama2.jpg"), frame_of(images / "biden.jpg")
    height = min(obama.shape[0], biden.shape[0])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 480, height, "yuv420p"
        for index in range(2 * FPS):
            pixels = (obama if index < FPS else biden)[:height]
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# -- files ---------------------------------------------------------------------------------------


def test_a_file_is_read_whole_and_each_person_gets_a_track_of_their_own(gallery, clip):
    watcher = Watcher(gallery, every=5)
    events = list(watcher.run(clip))
    assert watcher.stats.frames == 2 * FPS and watcher.stats.searched == 12 and watcher.stats.dropped == 0
    ended = [e for e in events if e.event == "ended"]
    # Biden takes Obama's place between two frames, in the same spot: the appearance check splits the track.
    assert [e.identity for e in ended] == ["Barack Obama", "Joe Biden"], [e.to_dict() for e in events]
    obama, biden = ended
    assert obama.last_frame < FPS <= biden.first_frame
    assert obama.track != biden.track and watcher.stats.splits == 1
    assert [e.event for e in events if e.track == obama.track] == ["decided", "ended"]
    data = obama.to_dict()
    assert data["event"] == "ended" and 0.9 < data["score"] <= 1 and data["first_seconds"] == 0.0
    assert set(data["box"]) == {"left", "top", "right", "bottom"}
    assert data["operating_point"]["fpir"] is not None and "template" not in data  # nothing kept of anyone


def test_a_track_is_split_when_another_face_appears_in_its_place(engine, images):
    """Position alone would continue the track: the same box, another person's face."""
    tracker = FaceTracker(FPS)
    faces = {}
    for name in ("obama.jpg", "biden.jpg"):
        found = engine.one_face(images / name)[0]
        faces[name] = found
    box_face = faces["obama.jpg"].face
    ended = []
    for index in range(6):
        who = faces["obama.jpg" if index < 3 else "biden.jpg"]
        sample = Sample(index, index / FPS, box_face, who.embedding, face_quality(box_face))
        ended += tracker.update(index, index / FPS, [sample])
    ended += tracker.close()
    assert [track.id for track in ended] == [1, 2] and tracker.splits == 1
    assert [track.faces for track in ended] == [3, 3]


def test_a_truncated_file_is_a_video_error_and_the_cli_says_so_in_one_line(gallery, clip, tmp_path):
    data = clip.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="truncated|damaged|not a readable video"):
        list(Watcher(gallery, every=5).run(truncated))
    result = CliRunner().invoke(app, ["watch", str(truncated), "--db", str(gallery.path), "--json"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in result.output


@pytest.mark.parametrize("content", [b"", b"not a video at all\n" * 50])
def test_a_file_that_is_not_a_video_is_a_video_error(tmp_path, content):
    path = tmp_path / "fake.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match="not a readable video|no video stream"):
        open_source(path)
    with pytest.raises(VideoError, match="no such video file"):
        open_source(tmp_path / "missing.mp4")


@pytest.mark.parametrize("photo", ["obama.jpg", "32bit.png"])
def test_a_still_photo_is_refused_with_the_command_for_photos(images, photo):
    with pytest.raises(VideoError, match="a still image, not a video: use `faceshot identify`"):
        open_source(images / photo)


def test_the_cli_writes_events_an_annotated_video_and_the_best_faces(gallery, clip, tmp_path):
    out, shots = tmp_path / "annotated.mp4", tmp_path / "faces"
    result = CliRunner().invoke(app, ["watch", str(clip), "--db", str(gallery.path), "--json", "--every", "10",
                                      "--out", str(out), "--snapshots", str(shots)])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["identity"] for e in events if e["event"] == "ended"} == {"Barack Obama", "Joe Biden"}
    with av.open(str(out)) as written:
        frames = [f.to_ndarray(format="rgb24") for f in written.decode(video=0)]
    assert len(frames) == 2 * FPS
    # Boxes are drawn in green (named) around the tracked face on a frame after the first decision (frames 0, 10, 20).
    green = (frames[25][..., 1] > 150) & (frames[25][..., 0] < 100) & (frames[25][..., 2] < 130)
    assert green.sum() > 200
    assert sorted(p.name.split("_", 1)[1] for p in shots.iterdir()) == ["Barack_Obama.jpg", "Joe_Biden.jpg"]


def test_unknown_tracks_leave_nothing_behind_unless_kept(gallery, clip, tmp_path):
    """Only Biden may be named (group vip): Obama's track is unknown, and without --keep-unknown
    neither his face nor his template leaves the run."""
    dropped, kept = tmp_path / "dropped", tmp_path / "kept"
    for folder, extra in ((dropped, []), (kept, ["--keep-unknown"])):
        result = CliRunner().invoke(app, ["watch", str(clip), "--db", str(gallery.path), "--group", "vip", "--json",
                                          "--every", "10", "--snapshots", str(folder), *extra])
        assert result.exit_code == 0, result.output
        ended = [json.loads(line) for line in result.stdout.splitlines() if '"ended"' in line]
        assert [e["identity"] for e in ended] == [None, "Joe Biden"]
        unknown = ended[0]
        if extra:
            template = np.array(unknown["template"], dtype=np.float32)
            assert template.shape == (128,) and abs(np.linalg.norm(template) - 1) < 1e-4
            # The kept template is the person's: searched among everyone, it is Obama's.
            assert gallery.identify_embeddings(template)[0].identity == "Barack Obama"
            assert sorted(p.name for p in folder.iterdir()) == ["track0001_unknown.jpg", "track0002_Joe_Biden.jpg"]
        else:
            assert "template" not in unknown and "template" not in ended[1]
            assert sorted(p.name for p in folder.iterdir()) == ["track0002_Joe_Biden.jpg"]


# -- live sources --------------------------------------------------------------------------------


class PacedCamera:
    """A 30 fps camera: a photo, frame after frame, at the camera's pace (``sent``: the newest index)."""

    live = True

    def __init__(self, image: np.ndarray, seconds: float) -> None:
        self.image, self.count = image, round(seconds * FPS)
        self.name, self.fps, self.total = "synthetic camera", float(FPS), None

    def __iter__(self):
        start = time.perf_counter()
        for index in range(self.count):
            wait = start + index / FPS - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            yield Frame(index, index / FPS, self.image)

    def close(self) -> None:
        pass


class Slowed(Detector):
    """The real detector, made to take at least ``delay`` seconds a frame (a slow machine)."""

    def __init__(self, inner: Detector, delay: float) -> None:
        self.inner, self.delay, self.name = inner, delay, f"slowed {inner.name}"

    def detect(self, image):
        started = time.perf_counter()
        faces = self.inner.detect(image)
        time.sleep(max(0.0, self.delay - (time.perf_counter() - started)))
        return faces


def test_a_slow_consumer_of_a_live_camera_drops_frames_and_never_falls_behind(gallery, engine, images):
    slow = Engine(detector=Slowed(engine.detector, 0.1), embedder=engine.embedder)
    with Gallery(gallery.path, engine=slow) as slowed:
        watcher = Watcher(slowed, every=1)
        events = list(watcher.run(PacedCamera(frame_of(images / "obama2.jpg"), seconds=2.0)))
    stats = watcher.stats
    # Each search takes 3+ camera frames: most frames are dropped, and each searched frame was at
    # most one frame behind the newest the camera had produced when its search began.
    assert stats.dropped >= 30 and stats.searched <= 25 and stats.frames + stats.dropped <= 60
    assert max(stats.behind) <= 1, stats.behind
    assert {e.identity for e in events if e.event == "ended"} == {"Barack Obama"}


class MjpegHandler(http.server.BaseHTTPRequestHandler):
    frames: list[bytes] = []
    pace = 1 / FPS

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for jpeg in self.frames:
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg))
            self.wfile.write(jpeg + b"\r\n")
            time.sleep(self.pace)
        # The camera stops: the connection closes mid-stream, with no end marker.

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def mjpeg(images):
    """An MJPEG camera on 127.0.0.1: 45 JPEG frames of obama2.jpg at 30 fps, then it stops."""
    buffer = io.BytesIO()
    Image.fromarray(frame_of(images / "obama2.jpg")).save(buffer, "JPEG", quality=85)
    MjpegHandler.frames = [buffer.getvalue()] * 45
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MjpegHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    server.shutdown()
    server.server_close()


def test_an_http_mjpeg_stream_is_watched_live_and_its_end_ends_the_run_cleanly(gallery, mjpeg):
    watcher = Watcher(gallery, every=2)
    started = time.perf_counter()
    events = list(watcher.run(mjpeg))
    assert time.perf_counter() - started < 20
    assert watcher.stats.frames >= 5 and watcher.stats.searched >= 3
    ended = [e for e in events if e.event == "ended"]
    assert [e.identity for e in ended] == ["Barack Obama"], [e.to_dict() for e in events]


def test_a_stream_that_cannot_be_reached_is_unavailable(gallery):
    from faceshot import UnavailableError

    with pytest.raises(UnavailableError):
        list(Watcher(gallery).run("http://127.0.0.1:9/nothing-listens-here.mjpg"))
