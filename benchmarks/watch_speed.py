"""``faceshot watch`` against face_recognition's video example loop, same videos, same run.

    nice -n 10 python benchmarks/watch_speed.py [--every 1,5,10] [--detector cnn-onnx] [--crowd-frames 50]

Videos: ``short_hamilton_clip.mp4`` (640x360, 275 frames) with Lin-Manuel Miranda, Alex Lacamoire
and Barack Obama enrolled from one photo each (the photos of ``tests/watch_annotations.py``), and
the first ``--crowd-frames`` frames of ``crowd_walk.mp4`` (1920x1080) with the six
``face_recognition_examples`` people enrolled (their first photo each), none of whom is in it.

- ``face_recognition``: the loop of its ``examples/facerec_from_video_file.py``: every frame,
  ``face_locations`` (HOG, one upsampling, its default), ``face_encodings``, ``compare_faces`` with
  the known encodings (tolerance 0.6), a name per face per frame;
- ``faceshot``: :class:`faceshot.video.Watcher` with ``--detector`` at each ``--every``, the default
  per-track operating point (FPIR 1%).

Then the whole crowd clip at every 5th frame with each detector of ``--crowd-detectors`` (nobody
enrolled but one stranger): tracks made, tracks split, fps, against the 10 people counted by eye.

Reported per system: frames per second over the whole video (decoding included), per-frame latency
(median, 95th percentile and worst of the time from one frame handed out to the next), and who was
named where: face_recognition's frames per name (and how many lie outside the by-eye ranges), and
faceshot's named tracks with their frame ranges. Models are loaded before the clock starts. Needs
``make bench-deps`` (face_recognition) and ``../shared/datasets``; prints the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from watch_annotations import HAMILTON, HAMILTON_PHOTOS  # noqa: E402

DATASETS = Path(os.environ.get("FACESHOT_DATASETS", ROOT.parent / "shared" / "datasets"))
EXAMPLES = DATASETS / "face_recognition_examples"


def frames_of(path: Path, limit: int | None):
    import av

    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if limit is not None and index >= limit:
                return
            yield index, frame.to_ndarray(format="rgb24")


def latency(times: list[float]) -> str:
    values = np.diff(np.array(times)) * 1000
    return f"median {np.median(values):.0f} ms, p95 {np.percentile(values, 95):.0f} ms, worst {values.max():.0f} ms"


def outside(name: str, frame: int, truth: dict[str, list[tuple[int, int]]] | None) -> bool:
    if truth is None:
        return True  # nobody enrolled is in the video
    return not any(a <= frame <= b for a, b in truth.get(name, []))


def run_face_recognition(video: Path, people: dict[str, Path], limit: int | None, truth) -> None:
    import face_recognition

    known = [face_recognition.face_encodings(face_recognition.load_image_file(str(p)))[0] for p in people.values()]
    names = list(people)
    face_recognition.face_locations(np.zeros((64, 64, 3), np.uint8))  # load the models
    named: dict[str, list[int]] = {}
    times = [time.perf_counter()]
    for index, rgb in frames_of(video, limit):
        locations = face_recognition.face_locations(rgb)
        for encoding in face_recognition.face_encodings(rgb, locations):
            matches = face_recognition.compare_faces(known, encoding)
            distances = face_recognition.face_distance(known, encoding)
            best = int(np.argmin(distances)) if len(distances) else -1
            if best >= 0 and matches[best]:
                named.setdefault(names[best], []).append(index)
        times.append(time.perf_counter())
    frames = len(times) - 1
    print(f"  face_recognition (every frame): {frames / (times[-1] - times[0]):.2f} fps; {latency(times)}")
    for name, found in sorted(named.items()):
        wrong = sum(outside(name, f, truth) for f in found)
        print(f"    {name}: named on {len(found)} frames, {found[0]}-{found[-1]}; {wrong} outside the by-eye frames")
    if not named:
        print("    nobody named")


def run_faceshot(video: Path, people: dict[str, Path], limit: int | None, truth, detector: str, every: int) -> None:
    import faceshot
    from faceshot.gallery import Gallery
    from faceshot.video import Watcher

    class Limited:
        def __init__(self, path: Path) -> None:
            from faceshot.video import VideoSource

            self.inner = VideoSource(path)
            self.name, self.fps, self.live = self.inner.name, self.inner.fps, False
            self.total = limit or self.inner.total

        def __iter__(self):
            for frame in self.inner:
                if limit is not None and frame.index >= limit:
                    return
                yield frame

        def close(self) -> None:
            self.inner.close()

    with tempfile.TemporaryDirectory() as folder, Gallery(Path(folder) / "g.db", engine=faceshot.Engine(detector=detector)) as gallery:
        for name, photo in people.items():
            gallery.enroll(name, photo, force=True)
        gallery.engine.detector.detect(np.zeros((64, 64, 3), np.uint8))  # load the models
        gallery.engine.embed_faces(np.zeros((64, 64, 3), np.uint8), [])
        watcher = Watcher(gallery, every=every)
        times = [time.perf_counter()]
        events = list(watcher.run(Limited(video), on_frame=lambda frame, tracks: times.append(time.perf_counter())))
    stats = watcher.stats
    print(f"  faceshot {detector} every {every}: {stats.frames / (times[-1] - times[0]):.2f} fps; {latency(times)}; "
          f"{stats.tracks} tracks, {stats.splits} split on appearance")
    ended = [e for e in events if e.event == "ended"]
    named = [e for e in events if e.identity is not None]
    for e in ended:
        if e.identity is not None:
            wrong = outside(e.identity, e.first_frame, truth) or outside(e.identity, e.last_frame, truth)
            print(f"    track {e.track}: {e.identity} (score {e.score:.3f}), frames {e.first_frame}-{e.last_frame}"
                  f"{' OUTSIDE the by-eye frames' if wrong else ''}")
    changed = [e for e in named if e.event in ("decided", "changed") and not any(x.track == e.track for x in ended if x.identity)]
    for e in changed:
        print(f"    track {e.track}: named {e.identity} on {e.event} at frame {e.last_frame}, unknown at its end")
    print(f"    {sum(1 for e in ended if e.identity is None)} tracks unknown"
          f" (scores {', '.join(f'{e.score:.3f}' for e in ended if e.identity is None and e.score is not None)})")


def crowd_tracks(detector: str, models: Path) -> None:
    import faceshot
    from faceshot.gallery import Gallery
    from faceshot.video import Watcher

    spec = f"mtcnn:cache_dir={models}" if detector == "mtcnn" else detector
    with tempfile.TemporaryDirectory() as folder, Gallery(Path(folder) / "g.db", engine=faceshot.Engine(detector=spec)) as gallery:
        gallery.enroll("Joe Biden", sorted((EXAMPLES / "biden").iterdir())[0], force=True)
        gallery.engine.detector.detect(np.zeros((64, 64, 3), np.uint8))
        watcher = Watcher(gallery, every=5)
        events = [e for e in watcher.run(DATASETS / "videos" / "crowd_walk.mp4") if e.event == "ended"]
    stats = watcher.stats
    print(f"  {detector}: {stats.tracks} tracks ({stats.splits} split), {sum(e.identity is None for e in events)} unknown; "
          f"{stats.frames / stats.seconds:.2f} fps; faces per track {sorted(e.faces for e in events)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", default="1,5,10")
    parser.add_argument("--detector", default="cnn-onnx")
    parser.add_argument("--crowd-frames", type=int, default=50)
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--crowd-detectors", default="hog,cnn-onnx,mtcnn")
    parser.add_argument("--models", type=Path, default=ROOT / ".cache" / "models", help="MTCNN's weights (make test-models)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    cases = [
        ("short_hamilton_clip.mp4", {n: EXAMPLES / p for n, p in HAMILTON_PHOTOS.items()}, None, HAMILTON),
        ("crowd_walk.mp4", {f.name: sorted(f.iterdir())[0] for f in sorted(EXAMPLES.iterdir())}, args.crowd_frames, None),
    ]
    for name, people, limit, truth in cases:
        video = DATASETS / "videos" / name
        print(f"{name}{'' if limit is None else f' (first {limit} frames)'}:", flush=True)
        if not args.skip_peer:
            run_face_recognition(video, people, limit, truth)
        for every in (int(x) for x in args.every.split(",")):
            run_faceshot(video, people, limit, truth, args.detector, every)
        sys.stdout.flush()
    print("crowd_walk.mp4, all 105 frames, every 5 (10 people counted by eye):", flush=True)
    for detector in filter(None, args.crowd_detectors.split(",")):
        crowd_tracks(detector, args.models)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
