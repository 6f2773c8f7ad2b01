"""The per-track operating point: how sure a track's template must be before it is named.

A video shows a stranger in many frames. Deciding on every frame would give them a fresh chance to
be named as someone each time; ``faceshot watch`` instead decides a *track* a few times (see
:data:`DECIDE_AT`) on its *template*, the renormalised mean of its best face embeddings. The FPIR
asked for (default 1%, the share of strangers' tracks that may be named as someone) is split
between those decisions (a union bound: at most ``fpir / decisions`` each), and each decision's
threshold is read from a FAR table measured for templates of that many faces.

Those tables (``track_far.json``, one per template size k = 1..6) were measured on LFW by
``benchmarks/calibrate_watch_tracks.py``: templates of k photos of each of the people with at least
six usable photos against one-shot enrolled photos of other people (its ``reference`` says exactly
what; BENCHMARKS.md has the figures). A mean template scores *higher* against strangers than one
photo does (its noise averaged away, it sits nearer every face), so the single-photo table would
let more strangers through than it says. The frames of one track are more alike than k different
photos of a person, so a track's template varies less than an LFW one: the tables err on the strict
side there. A target rate beyond a table's last row gives that row's threshold, ``clamped``, as
everywhere in faceshot (:mod:`faceshot.match`).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, replace
from importlib.resources import files
from typing import Any

from faceshot.match import Calibration, OperatingPoint, far_for, fpir_of, resolve_operating_point

__all__ = ["TrackCalibration", "DECIDE_AT", "TEMPLATE_SIZE", "DECISIONS"]

log = logging.getLogger(__name__)

#: A track is decided when it has gathered this many face embeddings (and once at its end if it
#: ended with fewer than the first): at most ``len(DECIDE_AT)`` decisions per track.
DECIDE_AT = (3, 6, 12)
DECISIONS = len(DECIDE_AT)
#: The template is the mean of a track's best faces, at most this many (the tables' largest k).
TEMPLATE_SIZE = 6


@dataclass(frozen=True)
class TrackCalibration:
    """FAR tables of k-face templates against one-shot enrolled faces, one per k (1..``TEMPLATE_SIZE``).

    ``embedder``: the vector space measured. ``tables``: ``{k: Calibration}`` (each a
    :class:`~faceshot.match.Calibration` whose ``far_table`` is the k-face one). ``reference``:
    what was measured, in words.
    """

    embedder: str
    tables: dict[int, Calibration]
    reference: str
    figures: dict[str, Any]

    @classmethod
    def bundled(cls, embedder: str) -> "TrackCalibration | None":
        """The tables shipped for vectors of ``embedder``'s space (``"dlib-resnet"``), or ``None``."""
        return _bundled(embedder)

    def table(self, faces: int) -> Calibration:
        """The table for a template of ``faces`` faces (the largest measured beyond it)."""
        return self.tables[min(max(faces, 1), max(self.tables))]

    def point(
        self,
        template_faces: int,
        *,
        enrolled: int,
        fpir: float | None = None,
        threshold: float | None = None,
    ) -> OperatingPoint:
        """The operating point of one decision on a template of ``template_faces`` faces, searched
        against ``enrolled`` enrolled faces.

        ``threshold`` (a score) wins when given; else ``fpir`` (default 1%) is the target for the
        whole track, split over :data:`DECISIONS` decisions. The result's ``far`` is the
        per-comparison rate at its threshold for this template size; ``fpir`` the per-track bound
        (``DECISIONS`` times one decision's); ``clamped`` as in :func:`faceshot.match.resolve_operating_point`.
        """
        table = self.table(template_faces)
        if threshold is not None:
            point = resolve_operating_point(table, threshold=threshold, faces=enrolled)
        else:
            per_decision = (fpir if fpir is not None else 0.01) / DECISIONS
            point = resolve_operating_point(table, fpir=per_decision, faces=enrolled)
            if point.clamped:
                # Tables end where their impostor pairs run out, the larger k's sooner (fewer
                # distinct templates): beyond its own, a template is held to the strictest last row
                # of the tables up to its size (a larger template never scores strangers lower).
                k = min(max(template_faces, 1), max(self.tables))
                strictest = max(self.tables[j].far_table[-1][0] for j in self.tables if j <= k)
                if strictest > point.threshold:
                    return OperatingPoint(strictest, table.far_at(strictest), None, clamped=True)
        if point.far is None:
            return point
        each = point.fpir if point.fpir is not None else fpir_of(point.far, enrolled)
        return replace(point, fpir=min(1.0, each * DECISIONS))


def single_photo_point(
    calibration: Calibration | None, *, enrolled: int, fpir: float | None, threshold: float | None, embedder: str
) -> OperatingPoint:
    """For an embedder without track tables: the single-photo table, with the FPIR still split
    over the decisions (strangers' templates score a little higher than single photos: looser
    than it says; a warning is logged once)."""
    _warn_once(embedder)
    if threshold is not None:
        return resolve_operating_point(calibration, threshold=threshold, faces=enrolled, embedder=embedder)
    per_decision = (fpir if fpir is not None else 0.01) / DECISIONS
    point = resolve_operating_point(calibration, far=far_for(per_decision, enrolled), faces=enrolled, embedder=embedder)
    return replace(point, fpir=None if point.fpir is None else min(1.0, point.fpir * DECISIONS))


@functools.lru_cache(maxsize=None)
def _warn_once(embedder: str) -> None:
    log.warning("no per-track calibration for %r vectors: using its single-photo FAR table", embedder)


@functools.lru_cache(maxsize=None)
def _bundled(embedder: str) -> TrackCalibration | None:
    resource = files("faceshot.video") / "track_far.json"
    if not resource.is_file():
        return None
    data = json.loads(resource.read_text())
    if data["embedder"] != embedder:
        return None
    tables = {
        int(k): Calibration(embedder, rows[0][0], tuple((float(t), float(f)) for t, f in rows),
                            f"{data['reference']}; templates of {k} faces", {})
        for k, rows in data["tables"].items()
    }
    return TrackCalibration(embedder, tables, data["reference"], data.get("figures", {}))
