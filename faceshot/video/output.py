"""What ``faceshot watch`` writes besides events: an annotated video and the best face of each track."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from faceshot.annotate import KNOWN, UNKNOWN, font_for
from faceshot.errors import ConfigError
from faceshot.video.source import Frame, _av
from faceshot.video.tracks import Track

__all__ = ["AnnotatedVideo", "save_snapshot", "draw_tracks"]

PENDING = (240, 200, 40)  # a track not decided yet


def draw_tracks(image: np.ndarray, tracks: list[Track]) -> np.ndarray:
    """A copy of ``image`` (RGB ``uint8``) with each track's last box, id and name (green: named,
    red: unknown, yellow: not decided yet)."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 400))
    size = max(12, round(max(canvas.size) / 50))
    for track in tracks:
        box = track.box
        if not track.decided:
            colour, label = PENDING, f"#{track.id}"
        elif track.identity is None:
            colour, label = UNKNOWN, f"#{track.id} unknown"
        else:
            colour, label = KNOWN, f"#{track.id} {track.identity} {track.score:.2f}"
        font = font_for(label, size) or font_for(f"#{track.id}", size)
        draw.rectangle((box.left, box.top, box.right, box.bottom), outline=colour, width=width)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        x = max(0, min(box.left, canvas.width - (right - left) - 2))
        y = max(0, box.top - (bottom - top) - 2 * width)
        draw.rectangle((x - 2, y + top - 2, x + right - left + 2, y + bottom + 2), fill=colour)
        draw.text((x - left, y), label, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)


class AnnotatedVideo:
    """An H.264 MP4 (any container FFmpeg writes, by the file's extension) of the frames with their
    tracks drawn, at the source's frame rate. Raises :class:`~faceshot.errors.ConfigError` when the
    file cannot be made (a missing folder, an unknown extension)."""

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        av = _av()
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise ConfigError(f"{self.path.parent}: no such folder for the annotated video")
        try:
            self._container = av.open(str(self.path), "w")
        except (av.FFmpegError, ValueError) as exc:
            raise ConfigError(f"{self.path}: cannot write a video there ({exc})") from None
        self._rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        self._stream = None

    def write(self, frame: Frame, tracks: list[Track]) -> None:
        av = _av()
        image = draw_tracks(frame.image, tracks)
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=self._rate)
            self._stream.height, self._stream.width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
            self._stream.pix_fmt = "yuv420p"
        image = image[: self._stream.height, : self._stream.width]  # yuv420p needs even sides
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
            self._container.mux(packet)

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()


def save_snapshot(folder: str | os.PathLike[str], track: Track) -> Path | None:
    """The best face crop of ``track`` as ``track0007_Ada.jpg`` (``unknown`` for an unknown track)
    in ``folder``; ``None`` when the track kept no crop."""
    if track.best is None or track.best.crop is None or track.best.crop.size == 0:
        return None
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in (track.identity or "unknown"))
    path = Path(folder) / f"track{track.id:04d}_{name}.jpg"
    Image.fromarray(track.best.crop).save(path, quality=90)
    return path
