"""Who appeared in a video, and when: detections every few frames, tracks, a decision per track.

    from faceshot.gallery import Gallery
    from faceshot.video import watch

    with Gallery("people.db") as gallery:
        for event in watch("door.mp4", gallery=gallery):
            print(event.to_dict())   # {"event": "decided", "track": 1, "identity": "Ada", ...}

Faces are detected and embedded on every ``every``-th frame (:data:`DEFAULT_EVERY`), followed
between detections by :class:`~faceshot.video.tracks.FaceTracker`, and each track is named (or
left unknown) from the template of its best faces at the per-track operating point of
:mod:`faceshot.video.calibration`. Events, in the order they happen:

``decided``
    a track's first decision: after :data:`~faceshot.video.calibration.DECIDE_AT`\\[0] faces, or at
    its end if it had fewer;
``changed``
    a later decision (more faces, a better template) named someone else, or no one;
``ended``
    the track was not seen for a second, was split off (another face in its place), or the source
    ended; it carries the final identity.

Each has the track id, the identity (``None``: unknown), the score (cosine similarity of the
template and the best enrolled match), first and last seen (frame and seconds), the best face's
frame and box, and the operating point used. Privacy by default: an unknown track's faces and
template are dropped; with ``keep_unknown`` its ``ended`` event carries the template, to enroll
later with :meth:`Gallery.add_embeddings <faceshot.gallery.Gallery.add_embeddings>` once named.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np

from faceshot.errors import ConfigError
from faceshot.gallery import Gallery
from faceshot.match import OperatingPoint
from faceshot.results import Box
from faceshot.video.calibration import DECIDE_AT, TrackCalibration, single_photo_point
from faceshot.video.source import Frame, FrameSource, open_source
from faceshot.video.tracks import SPLIT_SCORE, FaceTracker, Sample, Track, face_quality

__all__ = ["WatchEvent", "Watcher", "WatchStats", "watch", "DEFAULT_EVERY"]

log = logging.getLogger(__name__)

#: Detect faces on every 5th frame by default: on the Hamilton clip the largest step that kept the
#: tracks and names of searching every frame, at several times the speed; at 10, ByteTrack loses
#: faces between searches (benchmarks/watch_speed.py, BENCHMARKS.md).
DEFAULT_EVERY = 5

EventKind = Literal["decided", "changed", "ended"]


@dataclass(frozen=True)
class WatchEvent:
    """Something that happened to a track (see the module docstring for the three kinds).

    ``score``: cosine similarity of the track's template and its best enrolled match (``None``
    when the gallery, or the group searched, is empty). ``previous``: for ``changed``, the identity
    before. ``box``: the best face's box (pixels of the frame), seen at ``best_frame``.
    ``faces``: the faces embedded into the track so far. ``point``: the operating point of the
    decision. ``template``: with ``keep_unknown``, an unknown track's ``(dim,)`` unit template on
    its ``ended`` event (else ``None``).
    """

    event: EventKind
    track: int
    identity: str | None
    score: float | None
    first_frame: int
    first_seconds: float
    last_frame: int
    last_seconds: float
    best_frame: int
    box: Box
    faces: int
    point: OperatingPoint | None
    previous: str | None = None
    template: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "event": self.event,
            "track": self.track,
            "identity": self.identity,
            "score": None if self.score is None else round(self.score, 6),
            "first_frame": self.first_frame,
            "first_seconds": round(self.first_seconds, 3),
            "last_frame": self.last_frame,
            "last_seconds": round(self.last_seconds, 3),
            "best_frame": self.best_frame,
            "box": self.box.to_dict(),
            "faces": self.faces,
            "operating_point": None if self.point is None else self.point.to_dict(),
        }
        if self.event == "changed":
            data["previous"] = self.previous
        if self.template is not None:
            data["template"] = [round(float(x), 7) for x in self.template]
        return data


@dataclass
class WatchStats:
    """What a run did: frames read, frames searched for faces, frames a live source dropped,
    tracks, track splits, seconds of processing, and for live sources how many frames behind the
    newest decoded one each searched frame was when its search began (``behind``)."""

    frames: int = 0
    searched: int = 0
    dropped: int = 0
    tracks: int = 0
    splits: int = 0
    seconds: float = 0.0
    behind: list[int] = field(default_factory=list)


class Watcher:
    """Watches sources for the people of a gallery.

    ``gallery``: the enrolled people (its engine detects and embeds). ``group``: only its members
    may be named. ``every``: detect faces on every ``every``-th frame (live sources: on the newest
    frame once ``every`` frames have passed). ``fpir``: the share of strangers' tracks that may be
    named as someone (default 1%, split over a track's decisions); ``threshold``: a fixed score
    instead. ``keep_unknown``: see the module docstring. ``snapshots``: keep the best face crop of
    each track (``Track.best.crop``), for the ``on_end`` callback. ``split_score``: see
    :data:`~faceshot.video.tracks.SPLIT_SCORE`. Raises :class:`~faceshot.errors.ConfigError` for
    an impossible option, :class:`~faceshot.errors.NotFound` for an unknown group.
    """

    def __init__(
        self,
        gallery: Gallery,
        *,
        group: str | Sequence[str] | None = None,
        every: int = DEFAULT_EVERY,
        fpir: float | None = None,
        threshold: float | None = None,
        keep_unknown: bool = False,
        snapshots: bool = False,
        split_score: float = SPLIT_SCORE,
    ) -> None:
        if not isinstance(every, int) or every < 1:
            raise ConfigError(f"every must be a whole number of frames, at least 1, got {every!r}")
        if fpir is not None and threshold is not None:
            raise ConfigError("give fpir or threshold, not both")
        self.gallery = gallery
        self.group = group
        self.every = every
        self.fpir = fpir
        self.threshold = threshold
        self.keep_unknown = keep_unknown
        self.snapshots = snapshots
        self.split_score = split_score
        self.enrolled = gallery.store.scope(group)[0]  # NotFound for an unknown group, before any work
        self.calibration = TrackCalibration.bundled(gallery.store.embedder)
        gallery.operating_point(threshold, fpir=fpir if threshold is None else None)  # checks the values
        self.stats = WatchStats()

    def point(self, template_faces: int) -> OperatingPoint:
        """The operating point of a decision on a template of ``template_faces`` faces."""
        if self.calibration is not None:
            return self.calibration.point(template_faces, enrolled=self.enrolled, fpir=self.fpir, threshold=self.threshold)
        return single_photo_point(self.gallery.calibration, enrolled=self.enrolled, fpir=self.fpir,
                                  threshold=self.threshold, embedder=self.gallery.store.embedder)

    def run(
        self,
        source: str | int | os.PathLike[str] | FrameSource,
        *,
        live: bool | None = None,
        on_frame: Callable[[Frame, list[Track]], None] | None = None,
        on_end: Callable[[Track], None] | None = None,
    ) -> Iterator[WatchEvent]:
        """The events of ``source`` (a path, a webcam index, a URL, or a :class:`FrameSource`).

        ``on_frame(frame, tracks)`` is called for every frame handed out (live sources: those not
        dropped) with the tracks seen on it, to draw or count them; ``on_end(track)`` for each
        track as it ends, before its ``ended`` event (to save its best crop). Raises
        :class:`~faceshot.errors.VideoError` for a file that cannot be read (also part-way:
        the events so far have been yielded), :class:`~faceshot.errors.UnavailableError` for a
        stream that cannot be opened. A live stream that stops ends the run cleanly.
        """
        frames = open_source(source, live=live)
        tracker = FaceTracker(frames.fps, split_score=self.split_score)
        engine = self.gallery.engine
        stats = self.stats = WatchStats()
        started = time.perf_counter()
        last_search: int | None = None
        try:
            for frame in frames:
                stats.frames += 1
                due = frame.index % self.every == 0 if not frames.live else (
                    last_search is None or frame.index - last_search >= self.every)
                ended: list[Track] = []
                if due:
                    if frames.live:
                        stats.behind.append(max(0, getattr(frames, "latest", frame.index) - frame.index))
                    last_search = frame.index
                    stats.searched += 1
                    faces = engine.detector.detect(frame.image)
                    vectors = engine.embed_faces(frame.image, faces) if faces else np.zeros((0, 0), np.float32)
                    samples = [
                        Sample(frame.index, frame.seconds, face, vector, face_quality(face),
                               _crop(frame.image, face.box) if self.snapshots else None)
                        for face, vector in zip(faces, vectors)
                    ]
                    ended = tracker.update(frame.index, frame.seconds, samples)
                    for track in tracker.active.values():
                        if track.last_frame == frame.index and track.faces in DECIDE_AT:
                            yield from self._decide(track)
                else:
                    ended = tracker.expire(frame.seconds)
                for track in ended:
                    yield from self._end(track, on_end)
                if on_frame is not None:
                    on_frame(frame, [t for t in tracker.active.values() if t.last_frame >= frame.index - self.every])
            for track in tracker.close():
                yield from self._end(track, on_end)
        finally:
            stats.dropped = getattr(frames, "dropped", 0)
            stats.tracks = tracker.made
            stats.splits = tracker.splits
            stats.seconds = time.perf_counter() - started
            frames.close()

    def _decide(self, track: Track) -> Iterator[WatchEvent]:
        point = self.point(len(track.samples))
        found = self.gallery.identify_embeddings(track.template(), threshold=point.threshold, group=self.group, top_k=1)[0]
        previous, was_decided = track.identity, track.decided
        track.identity, track.score, track.point, track.decided = found.identity, found.score, point, True
        track.decisions += 1
        if not was_decided:
            yield self._event("decided", track)
        elif found.identity != previous:
            yield self._event("changed", track, previous=previous)

    def _end(self, track: Track, on_end: Callable[[Track], None] | None) -> Iterator[WatchEvent]:
        if not track.decided and track.faces:
            yield from self._decide(track)
        if on_end is not None and (track.identity is not None or self.keep_unknown):
            on_end(track)
        template = track.template() if self.keep_unknown and track.identity is None and track.samples else None
        yield self._event("ended", track, template=template)
        track.samples.clear()  # faces and crops are not kept past the track's end
        track.best = None

    @staticmethod
    def _event(kind: EventKind, track: Track, *, previous: str | None = None,
               template: np.ndarray | None = None) -> WatchEvent:
        best = track.best
        assert best is not None
        return WatchEvent(
            kind, track.id, track.identity, track.score, track.first_frame, track.first_seconds,
            track.last_frame, track.last_seconds, best.frame, best.face.box, track.faces, track.point,
            previous=previous, template=template,
        )


def watch(
    source: str | int | os.PathLike[str] | FrameSource,
    *,
    gallery: Gallery,
    group: str | Sequence[str] | None = None,
    every: int = DEFAULT_EVERY,
    fpir: float | None = None,
    threshold: float | None = None,
    keep_unknown: bool = False,
    live: bool | None = None,
) -> Iterator[WatchEvent]:
    """The events of ``source`` for the people of ``gallery``: see :class:`Watcher` and :meth:`Watcher.run`."""
    watcher = Watcher(gallery, group=group, every=every, fpir=fpir, threshold=threshold, keep_unknown=keep_unknown)
    yield from watcher.run(source, live=live)


def _crop(image: np.ndarray, box: Box, margin: float = 0.3) -> np.ndarray:
    """The face with a margin of ``margin`` times its size on each side, clipped to the frame."""
    height, width = image.shape[:2]
    dx, dy = round(box.width * margin), round(box.height * margin)
    return image[max(0, box.top - dy):min(height, box.bottom + dy), max(0, box.left - dx):min(width, box.right + dx)].copy()
