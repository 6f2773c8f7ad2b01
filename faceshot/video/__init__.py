"""Video and camera streams: who appeared, when (``faceshot watch``). Needs ``faceshot[video]``.

    from faceshot.gallery import Gallery
    from faceshot.video import watch

    with Gallery("people.db") as gallery:
        for event in watch("door.mp4", gallery=gallery):
            print(event.event, event.track, event.identity, event.score)

Sources (:mod:`faceshot.video.source`): a video file, a webcam index, an RTSP/HTTP stream URL.
Tracks (:mod:`faceshot.video.tracks`), the per-track operating point
(:mod:`faceshot.video.calibration`) and the events (:mod:`faceshot.video.watch`). Nothing heavy is
imported until a source is opened.
"""

from faceshot.video.calibration import DECIDE_AT, TrackCalibration
from faceshot.video.source import Frame, FrameSource, LiveFrames, VideoSource, open_source
from faceshot.video.tracks import SPLIT_SCORE, Track
from faceshot.video.watch import DEFAULT_EVERY, WatchEvent, Watcher, WatchStats, watch

__all__ = [
    "DECIDE_AT",
    "DEFAULT_EVERY",
    "Frame",
    "FrameSource",
    "LiveFrames",
    "SPLIT_SCORE",
    "Track",
    "TrackCalibration",
    "VideoSource",
    "WatchEvent",
    "WatchStats",
    "Watcher",
    "open_source",
    "watch",
]
