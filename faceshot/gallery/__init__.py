"""Galleries: people enrolled from a few photos, identified in new ones (open set), kept on disk.

:class:`Gallery` is the public face; it works over a :class:`Store` (by default
:class:`LocalStore`: SQLite, or PostgreSQL, as the source of truth plus a FAISS index derived from
it), opened by path or URL with :func:`open_store` (:mod:`faceshot.gallery.location`).
"""

from faceshot.gallery.gallery import DEFAULT_PATH, ENVIRONMENT_VARIABLE, FoundFace, Gallery
from faceshot.gallery.index import VectorIndex, create_index, indexes
from faceshot.gallery.local import LocalStore
from faceshot.gallery.location import Location, open_store, parse_location, register_vectors
from faceshot.gallery.migrate import MigrateSummary, migrate
from faceshot.gallery.ranking import Aggregation
from faceshot.gallery.results import (
    CheckReport,
    DirProgress,
    DirSummary,
    EnrolledFace,
    EnrollResult,
    ExportSummary,
    FaceInfo,
    FileIdentification,
    GroupSummary,
    Identification,
    ImportSummary,
    PersonDetails,
    PersonSummary,
    Rejected,
    Skipped,
)
from faceshot.gallery.settings import GallerySettings
from faceshot.gallery.store import Added, Hit, NewFace, PersonRecord, Store

__all__ = [
    "Added",
    "Aggregation",
    "CheckReport",
    "DEFAULT_PATH",
    "DirProgress",
    "DirSummary",
    "ENVIRONMENT_VARIABLE",
    "EnrollResult",
    "EnrolledFace",
    "ExportSummary",
    "FaceInfo",
    "FileIdentification",
    "FoundFace",
    "Gallery",
    "GallerySettings",
    "GroupSummary",
    "Hit",
    "Identification",
    "ImportSummary",
    "LocalStore",
    "Location",
    "MigrateSummary",
    "NewFace",
    "PersonDetails",
    "PersonRecord",
    "PersonSummary",
    "Rejected",
    "Skipped",
    "Store",
    "VectorIndex",
    "create_index",
    "indexes",
    "migrate",
    "open_store",
    "parse_location",
    "register_vectors",
]
