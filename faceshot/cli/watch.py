"""``faceshot watch``: a thin adapter over :class:`faceshot.video.Watcher`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from faceshot.cli.app import (
    GalleryOption,
    DetectorOption,
    EmbedderOption,
    JsonOption,
    MaxPixelsOption,
    Threshold,
    ThresholdOption,
    app,
    err,
    out,
    progress_bar,
    reports_errors,
)
from faceshot.cli.gallery import open_gallery
from faceshot.errors import ConfigError


@app.command()
@reports_errors
def watch(
    source: str = typer.Argument(..., help="A video file, a webcam index (0), or a stream URL (rtsp://..., http://...)."),
    db: Optional[str] = GalleryOption,
    group: Optional[str] = typer.Option(None, "--group", "-g", help="Name only the members of this group."),
    every: Optional[int] = typer.Option(
        None, "--every", min=1, help="Search for faces on every N-th frame; tracks follow them between. Default 5 (measured: BENCHMARKS.md)."
    ),
    fpir: Threshold = typer.Option(
        None, "--fpir", help="Share of strangers' tracks that may be named as someone (default 0.01)."
    ),
    threshold: Threshold = ThresholdOption,
    out_video: Optional[Path] = typer.Option(None, "--out", help="Write an annotated video (boxes, track ids, names), e.g. annotated.mp4."),
    snapshots: Optional[Path] = typer.Option(None, "--snapshots", help="Save the best face of each named track here (unknown ones too with --keep-unknown)."),
    keep_unknown: bool = typer.Option(
        False, "--keep-unknown", help="Keep unknown tracks: their templates in the ended events (--json) and their faces in --snapshots. Off: nothing of strangers is kept."
    ),
    detector: Optional[str] = DetectorOption,
    embedder: Optional[str] = EmbedderOption,
    max_pixels: Optional[int] = MaxPixelsOption,
    as_json: bool = JsonOption,
) -> None:
    """Who appears in a video or camera stream, and when: one line per event (decided, changed, ended).

    Each track (one person followed through the video) is named once enough faces are gathered,
    or left unknown. Live sources (webcams, stream URLs) skip frames to stay in real time; files
    show a progress bar. Ctrl-C stops a camera cleanly (exit 130).
    """
    from faceshot.video import DEFAULT_EVERY, Watcher
    from faceshot.video.output import AnnotatedVideo, save_snapshot

    if snapshots is not None:
        if snapshots.exists() and not snapshots.is_dir():
            raise ConfigError(f"{snapshots}: not a folder")
    with open_gallery(db, detector, embedder, max_pixels) as gallery:
        watcher = Watcher(gallery, group=group, every=every or DEFAULT_EVERY, fpir=fpir, threshold=threshold,
                          keep_unknown=keep_unknown, snapshots=snapshots is not None)
        from faceshot.video.source import open_source

        frames = open_source(source)
        writer = AnnotatedVideo(out_video, frames.fps) if out_video is not None else None
        if snapshots is not None:
            snapshots.mkdir(parents=True, exist_ok=True)
        bar = progress_bar() if frames.total else None
        task = bar.add_task(f"watching {source}", total=frames.total) if bar is not None else None

        def on_frame(frame, tracks) -> None:  # type: ignore[no-untyped-def]
            if writer is not None:
                writer.write(frame, tracks)
            if bar is not None:
                bar.advance(task)

        def on_end(track) -> None:  # type: ignore[no-untyped-def]
            if snapshots is not None:
                save_snapshot(snapshots, track)

        try:
            if bar is not None:
                bar.start()
            for event in watcher.run(frames, on_frame=on_frame, on_end=on_end):
                if as_json:
                    print(json.dumps(event.to_dict()), flush=True)
                else:
                    out.print(_line(event))
        finally:
            if bar is not None:
                bar.stop()
            if writer is not None:
                writer.close()
    stats = watcher.stats
    err.print(
        f"{stats.frames} frames read, {stats.searched} searched for faces"
        + (f", {stats.dropped} dropped to keep up" if stats.dropped else "")
        + f"; {stats.tracks} tracks in {stats.seconds:.1f} s"
    )


def _line(event) -> str:  # type: ignore[no-untyped-def]
    who = event.identity or "unknown"
    score = "" if event.score is None else f" (score {event.score:.3f})"
    change = f" (was {event.previous or 'unknown'})" if event.event == "changed" else ""
    return (
        f"{event.event:<8} track {event.track}: {who}{score}{change}, seen {event.first_seconds:.2f}-"
        f"{event.last_seconds:.2f} s (frames {event.first_frame}-{event.last_frame})"
    )
