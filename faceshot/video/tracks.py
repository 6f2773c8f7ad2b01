"""Face tracks between detections: ByteTrack for position, the embedding for appearance.

Positions are associated by ByteTrack (Roboflow's ``trackers`` package: a Kalman filter on each box
and two-stage IoU matching). Position alone would let a name slide onto someone else: when one
person leaves and another appears in the same spot a moment later (a door, a camera cut), ByteTrack
happily continues the track. So each face ByteTrack assigns to a track is also compared with the
track's template; two in a row below :data:`SPLIT_SCORE` end the track there, and a new one starts
with those faces. ByteTrack's own ids are mended too: a face that gets a new id where an unseen
track's last box was, and looks like it, continues that track.

A track keeps its best :data:`~faceshot.video.calibration.TEMPLATE_SIZE` faces by :func:`face_quality`
(large, frontal faces first) and their mean, renormalised, is its template.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from faceshot.errors import MissingExtraError
from faceshot.match import OperatingPoint
from faceshot.quality import yaw
from faceshot.results import Box, Face
from faceshot.video.calibration import TEMPLATE_SIZE

__all__ = ["Sample", "Track", "FaceTracker", "face_quality", "SPLIT_SCORE"]

log = logging.getLogger(__name__)

#: Two faces in a row scoring below this against their track's template end the track and start a
#: new one (one such face alone is set aside: a head turned or bowed for a moment). Measured with
#: ``cnn-onnx`` every 5th frame: across the Hamilton clip's camera cut, Obama's face scored 0.895
#: against Miranda's template, the track ByteTrack had put it in; faces of one person in their own
#: track scored 0.952-0.994 at their lowest, except a young man bowing his head at the end of the
#: crowd clip (0.929 then 0.897 against his template at first; 0.905 then 0.925 with this rule): a
#: single face under 0.93 would have cut his track in three. On LFW half of all pairs of different people score above 0.84 (the single-photo
#: FAR table): this check tells apart the people a track could confuse by position, not strangers
#: in general; naming them is the calibrated decision's job.
SPLIT_SCORE = 0.91


def face_quality(face: Face) -> float:
    """How much a face's embedding is worth for the template: its width in pixels, counted up to
    80 (the enrollment gate measured embeddings barely moving above 63 px, :mod:`faceshot.quality`),
    over 80, less the head's turn (``|yaw|``, 0 frontal, about 0.2 at the gate's limit)."""
    return min(face.box.width, 80) / 80 - abs(yaw(face))


@dataclass(eq=False)
class Sample:
    """One face of a track: where and when, its embedding and quality, and (for the best ones) its crop."""

    frame: int
    seconds: float
    face: Face
    embedding: np.ndarray
    quality: float
    crop: np.ndarray | None = None


@dataclass(eq=False)
class Track:
    """One person followed through the video.

    ``id``: numbered from 1 in order of appearance. ``faces``: how many faces were embedded into it.
    ``identity``/``score``/``point``: the last decision (``decided`` False before the first).
    ``box``: where it was last seen.
    """

    id: int
    first_frame: int
    first_seconds: float
    last_frame: int
    last_seconds: float
    box: Box
    samples: list[Sample] = field(default_factory=list)
    faces: int = 0
    decided: bool = False
    decisions: int = 0
    identity: str | None = None
    score: float | None = None
    point: OperatingPoint | None = None
    best: Sample | None = None
    held: Sample | None = None  #: a face unlike the template, waiting for the next to confirm a split

    def add(self, sample: Sample) -> None:
        self.faces += 1
        self.last_frame, self.last_seconds, self.box = sample.frame, sample.seconds, sample.face.box
        if self.best is None or sample.quality > self.best.quality:
            if self.best is not None:
                self.best.crop = None  # only the best face's crop is kept
            self.best = sample
        elif sample is not self.best:
            sample.crop = None
        self.samples.append(sample)
        self.samples.sort(key=lambda s: s.quality, reverse=True)
        del self.samples[TEMPLATE_SIZE:]

    def template(self) -> np.ndarray:
        """The mean of the best faces' embeddings, renormalised: a ``(dim,)`` float32 unit vector."""
        mean = np.mean([s.embedding for s in self.samples], axis=0).astype(np.float32)
        return mean / np.linalg.norm(mean)


class FaceTracker:
    """Keeps tracks across the frames where faces were detected.

    ``fps``: the source's frame rate (ByteTrack's motion model counts in frames); ``lost_seconds``:
    a track not seen for longer ends; ``split_score``: see :data:`SPLIT_SCORE`.
    """

    def __init__(self, fps: float, *, lost_seconds: float = 1.0, split_score: float = SPLIT_SCORE) -> None:
        try:
            from trackers import ByteTrackTracker
        except ImportError:
            raise MissingExtraError("tracking faces needs the trackers package: pip install 'faceshot[video]'") from None
        fps = fps if fps > 0 else 30.0
        # Every face the detector returns passed its own threshold: detections are given to ByteTrack
        # without confidences (all 1.0), since dlib's and MTCNN's scales are not probabilities.
        # minimum_consecutive_frames=1: a face gets a track the first time it is seen.
        self._byte = ByteTrackTracker(
            lost_track_buffer=max(1, round(lost_seconds * fps)), frame_rate=fps, minimum_consecutive_frames=1,
        )
        self.lost_seconds = lost_seconds
        self.split_score = split_score
        self.active: dict[int, Track] = {}  # by ByteTrack's id
        self._next = 1
        self._pending: list[Sample] = []
        self.splits = 0

    def update(self, frame: int, seconds: float, samples: list[Sample]) -> list[Track]:
        """Assign this frame's faces to tracks; returns the tracks that ended (split off, or unseen
        for longer than ``lost_seconds``)."""
        import supervision as sv

        ended: list[Track] = []
        boxes = np.array([[s.face.box.left, s.face.box.top, s.face.box.right, s.face.box.bottom] for s in samples],
                         dtype=np.float32).reshape(-1, 4)
        detections = sv.Detections(xyxy=boxes, data={"sample": np.arange(len(samples))})
        tracked = self._byte.update(detections, timestamp=seconds)
        pairs = zip(tracked.tracker_id, tracked.data["sample"]) if len(tracked) else ()
        pending, self._pending = self._pending, []
        for byte_id, index in pairs:
            sample = samples[int(index)]
            if byte_id < 0:
                # ByteTrack confirms a new track on its second sighting: the first face waits here
                # and opens the track if the next sighting lies on it and looks like it.
                self._pending.append(sample)
                continue
            track = self.active.get(int(byte_id))
            score = None if track is None else float(track.template() @ sample.embedding)
            if track is not None:
                log.debug("frame %d: track %d, face scores %.4f against its template", frame, track.id, score)
            held = None
            if track is not None and score is not None:
                held, track.held = track.held, None
                if score < self.split_score:
                    if held is None:
                        track.held = sample  # one unlike face may be a turned head: wait for the next
                        continue
                    # Two unlike faces in a row: someone else is in the track's place.
                    log.debug("track %d split at frame %d: another face in its place", track.id, frame)
                    self.splits += 1
                    ended.append(track)
                    track = None
            if track is None:
                track = self._adopt(frame, sample) or self._new(sample, pending)
                self.active[int(byte_id)] = track
                if held is not None and track.faces == 0 and float(held.embedding @ sample.embedding) >= self.split_score:
                    track.first_frame, track.first_seconds = held.frame, held.seconds
                    track.add(held)
            track.add(sample)
        # (a track split off above was already replaced by its successor under the same ByteTrack id)
        return ended + self.expire(seconds)

    @property
    def made(self) -> int:
        """How many tracks were started so far."""
        return self._next - 1

    def expire(self, seconds: float) -> list[Track]:
        """The tracks unseen for longer than ``lost_seconds`` at time ``seconds``, removed."""
        ended = []
        for byte_id, track in list(self.active.items()):
            if seconds - track.last_seconds > self.lost_seconds:
                ended.append(track)
                del self.active[byte_id]
        return ended

    def close(self) -> list[Track]:
        """Every track still open (the source ended), removed."""
        ended = list(self.active.values())
        self.active.clear()
        return ended

    def _adopt(self, frame: int, sample: Sample) -> Track | None:
        """An open track not seen on this frame that ``sample`` continues (its last box overlaps,
        its face looks alike), taken from under the ByteTrack id it had. ByteTrack gives a face a
        new id when its motion model lost it (a track split off above keeps the motion of the face
        before it), where one person's track should go on."""
        best, best_iou = None, 0.3
        for byte_id, track in self.active.items():
            overlap = track.box.iou(sample.face.box)
            if track.last_frame < frame and overlap > best_iou and float(track.template() @ sample.embedding) >= self.split_score:
                best, best_iou = byte_id, overlap
        return None if best is None else self.active.pop(best)

    def _new(self, sample: Sample, pending: list[Sample]) -> Track:
        """A new track for ``sample``, opened by the earlier face it continues, if any."""
        # A face an open track set aside as unlike it, seen here again under a new ByteTrack id: the
        # other person who took that track's place. It opens this track (a split).
        held = {id(t.held): t for t in self.active.values() if t.held is not None}
        earlier = [p for p in [*pending, *(t.held for t in held.values())]
                   if p is not None and p.face.box.iou(sample.face.box) > 0.1
                   and float(p.embedding @ sample.embedding) >= self.split_score]
        earlier.sort(key=lambda p: p.frame)
        first = earlier[0] if earlier else sample
        track = Track(self._next, first.frame, first.seconds, first.frame, first.seconds, first.face.box)
        self._next += 1
        for face in earlier:
            if id(face) in held:
                held[id(face)].held = None
                self.splits += 1
                log.debug("track %d split at frame %d: another face in its place", held[id(face)].id, face.frame)
            else:
                pending.remove(face)
            track.add(face)
        return track
