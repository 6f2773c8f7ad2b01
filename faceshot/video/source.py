"""Frames from a video file, a webcam or a stream URL, decoded by PyAV (FFmpeg).

    for frame in open_source("door.mp4"):
        frame.index, frame.seconds, frame.image   # int, float, (H, W, 3) uint8 RGB

A source is one of:

- a video file path (anything FFmpeg reads: MP4, MKV, AVI, WebM, ...);
- a webcam index, ``0`` or ``"0"`` (Linux: ``/dev/video0`` through V4L2; macOS: AVFoundation);
- a stream URL: ``rtsp://``, ``rtmp://``, ``http(s)://`` (an HTTP MJPEG camera, an HLS playlist,
  a file on a web server), ``udp://``/``tcp://``, or ``file://``.

Webcams and URLs are *live*: :class:`LiveFrames` decodes them on a thread of its own and hands out
only the newest frame, so a slow consumer skips frames instead of falling behind the camera. Files
are read frame by frame (nothing is skipped; the consumer sets the pace).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from faceshot.errors import MissingExtraError, UnavailableError, VideoError

__all__ = ["Frame", "FrameSource", "VideoSource", "LiveFrames", "open_source", "is_live"]

log = logging.getLogger(__name__)

#: URL schemes FFmpeg opens as network streams.
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://", "file://")
#: Seconds to wait for a stream to answer when opening it, then for each read (PyAV's ``timeout``).
OPEN_TIMEOUT, READ_TIMEOUT = 10.0, 10.0


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame: ``index`` counts the source's frames from 0 (dropped ones included),
    ``seconds`` is its presentation time from the start of the source, ``image`` is RGB ``uint8``
    of shape ``(height, width, 3)``."""

    index: int
    seconds: float
    image: np.ndarray


class FrameSource(Protocol):
    """What :func:`faceshot.video.watch` reads: an iterable of :class:`Frame` with a few facts."""

    name: str
    fps: float  #: frames per second (nominal; 0 when the source does not say)
    total: int | None  #: frames in a file, ``None`` when unknown or live
    live: bool  #: a camera or stream: frames are dropped rather than fall behind

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


def _av():
    try:
        import av
    except ImportError:
        raise MissingExtraError("reading video needs PyAV: pip install 'faceshot[video]'") from None
    return av


def is_live(source: str | int | os.PathLike[str]) -> bool:
    """A webcam index or a stream URL (not a ``file://`` one): frames are dropped to keep up."""
    if isinstance(source, int):
        return True
    text = str(source)
    return text.isdigit() or (text.lower().startswith(STREAM_SCHEMES) and not text.lower().startswith("file://"))


class VideoSource:
    """A video file, webcam or stream opened with PyAV; iterate for :class:`Frame` values.

    ``source``: see the module docstring. Raises :class:`~faceshot.errors.VideoError` for a missing
    file or one FFmpeg cannot read as video, :class:`~faceshot.errors.UnavailableError` for a
    camera or URL that cannot be opened, :class:`~faceshot.errors.MissingExtraError` without PyAV.
    Decoding errors met while iterating a file (a truncated or damaged file) raise
    :class:`~faceshot.errors.VideoError` naming the last good frame; a live stream that stops or
    breaks simply ends.
    """

    def __init__(self, source: str | int | os.PathLike[str], *, live: bool | None = None) -> None:
        av = _av()
        self.live = is_live(source) if live is None else live
        text = str(source)
        options: dict[str, str] = {}
        container_format = None
        if isinstance(source, int) or text.isdigit():
            self.name = f"webcam {text}"
            if sys.platform == "darwin":
                container_format, target = "avfoundation", text
            else:
                container_format, target = "v4l2", f"/dev/video{text}"
        elif text.lower().startswith(STREAM_SCHEMES):
            self.name = text
            target = text
            if text.lower().startswith("rtsp"):
                options["rtsp_transport"] = "tcp"  # UDP loses packets on busy networks: torn frames
        else:
            path = Path(source)
            self.name = str(path)
            if not path.is_file():
                raise VideoError(f"{path}: no such video file" if not path.exists() else f"{path}: not a file")
            target = str(path)
        try:
            self._container = av.open(
                target, format=container_format, options=options, timeout=(OPEN_TIMEOUT, READ_TIMEOUT)
            )
        except av.FFmpegError as exc:
            if self.live:
                raise UnavailableError(f"{self.name}: cannot open the stream ({_reason(exc)})") from None
            raise VideoError(f"{self.name}: not a readable video ({_reason(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"{self.name}: holds no video stream")
        demuxer = self._container.format.name
        if not self.live and (demuxer == "image2" or demuxer.endswith("_pipe")):
            # FFmpeg reads a photo as a one-frame video, on which no track lasts long enough to be named.
            self._container.close()
            raise VideoError(f"{self.name}: a still image, not a video: use `faceshot identify` for photos")
        self._stream = stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"  # FFmpeg's own frame threads: decoding keeps up with 1080p
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.total = None if self.live or not stream.frames else int(stream.frames)
        self.width, self.height = stream.codec_context.width, stream.codec_context.height

    def __iter__(self) -> Iterator[Frame]:
        av = _av()
        index = 0
        stream = self._stream
        base = float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0
        try:
            for frame in self._container.decode(stream):
                if frame.pts is not None and frame.time is not None:
                    seconds = float(frame.time) - base
                else:
                    seconds = index / self.fps if self.fps else 0.0
                yield Frame(index, max(seconds, 0.0), frame.to_ndarray(format="rgb24"))
                index += 1
        except av.FFmpegError as exc:
            if self.live:
                log.info("%s: the stream stopped after %d frames (%s)", self.name, index, _reason(exc))
                return
            raise VideoError(f"{self.name}: damaged or truncated after frame {index} ({_reason(exc)})") from None
        if self.total is not None and index < self.total * 0.9:
            # FFmpeg ends quietly at the cut of many truncated files: the header promised more frames.
            raise VideoError(f"{self.name}: truncated: {index} of the {self.total} frames its header announces")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LiveFrames:
    """The newest frame of a live source, decoded on a thread of its own: frames the consumer is
    too slow for are dropped (counted in ``dropped``), never queued.

    Iterating waits for a frame newer than the last one handed out and returns the newest; when
    ``source`` ends (a stream that stops, a camera unplugged) iteration ends after the last frame.
    ``latest`` is the index of the newest frame decoded so far (for measuring lag).
    """

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self.name, self.fps, self.total, self.live = source.name, source.fps, None, True
        self.dropped = 0
        self.latest = -1
        self.error: BaseException | None = None
        self._frame: Frame | None = None
        self._done = False
        self._stop = threading.Event()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._read, name=f"faceshot-video-{source.name}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for frame in self.source:
                with self._ready:
                    self._frame = frame
                    self.latest = frame.index
                    self._ready.notify_all()
                if self._stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            self.error = exc
        finally:
            with self._ready:
                self._done = True
                self._ready.notify_all()

    def __iter__(self) -> Iterator[Frame]:
        last = -1
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._done or (self._frame is not None and self._frame.index > last))
                frame = self._frame
                if frame is None or frame.index <= last:
                    break  # done, nothing new
            self.dropped += frame.index - last - 1
            last = frame.index
            yield frame
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=READ_TIMEOUT + 1)
        self.source.close()


def open_source(source: str | int | os.PathLike[str] | FrameSource, *, live: bool | None = None) -> FrameSource:
    """The frames of ``source`` (see the module docstring); live ones through :class:`LiveFrames`.

    ``source`` may also be a :class:`FrameSource` already (a test's synthetic camera, say): it is
    wrapped in :class:`LiveFrames` when live. ``live`` overrides the guess (``True`` for a file
    that is being written, ``False`` to process every frame of a stream).
    """
    if isinstance(source, LiveFrames):
        return source
    if not isinstance(source, (str, int, os.PathLike)):
        opened: FrameSource = source
    else:
        opened = VideoSource(source, live=live)
    return LiveFrames(opened) if opened.live else opened


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)
