"""The service's request bodies (pydantic models) and the OpenAPI description of bodies with images.

Images are not fields of these models: :func:`faceshot.server.inputs.read_request` takes them from
``multipart/form-data`` files or base64 JSON text, and validates the other fields with the model.
``extra="forbid"``: an unknown field is a 422, not silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_ID", "Id", "Operating", "DetectBody", "VerifyBody", "IdentifyBody", "EmbeddingsIdentifyBody", "PersonBody",
    "FacesBody", "PatchBody", "NameClusterBody", "MergeBody", "SplitBody", "KeyBody", "EmbeddingsBody", "image_body",
]

#: Ids are SQLite integers: larger numbers are refused here (422) rather than overflowing there.
MAX_ID = 2**63 - 1
Id = Annotated[int, PathParam(ge=0, le=MAX_ID)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Operating(_Body):
    threshold: float | None = Field(None, description="Score needed for a match (cosine similarity).")
    far: float | None = Field(None, gt=0, lt=1, description="Target false-accept rate instead, e.g. 0.001.")


class DetectBody(_Body):
    pass


class VerifyBody(Operating):
    multiple: Literal["largest", "central", "error"] = "largest"


class IdentifyBody(Operating):
    group: str | list[str] | None = None
    among: list[str] | None = Field(None, max_length=10_000, description="Compare only with these people (a friends list).")
    top_k: int = Field(5, ge=1, le=100)
    fpir: float | None = Field(None, gt=0, lt=1)
    multiple: bool = Field(True, description="Answer every face (true) or only the largest (false).")


class EmbeddingsIdentifyBody(IdentifyBody):
    vectors: list[list[float]] = Field(..., min_length=1, max_length=1000)
    space: str | None = Field(None, description="The vector space the vectors were made in (must be the gallery's).")


class PersonBody(_Body):
    name: str = Field(..., min_length=1, max_length=200)
    groups: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    force: bool = False
    keep_thumbnail: bool = False


class FacesBody(_Body):
    force: bool = False
    keep_thumbnail: bool = False


class PatchBody(_Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = None
    groups: list[str] | None = None


class NameClusterBody(_Body):
    name: str = Field(..., min_length=1, max_length=200)
    force: bool = False
    keep_thumbnail: bool = False


class MergeBody(_Body):
    source: int = Field(..., ge=0, le=MAX_ID, description="The cluster whose faces move into this one (it is then deleted).")


class SplitBody(_Body):
    face_id: int = Field(..., ge=0, le=MAX_ID, description="The face to move out into a new cluster of its own.")


class KeyBody(_Body):
    role: Literal["recognize", "enroll", "admin"]
    groups: list[str] = Field(default_factory=list)
    name: str | None = Field(None, max_length=200)


class EmbeddingsBody(_Body):
    vectors: list[list[float]] = Field(..., min_length=1, max_length=1000)
    space: str | None = None
    groups: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


def image_body(*fields: str, several: bool = False, model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body taking image files (multipart) or base64 text (JSON), plus ``model``'s fields."""
    schema = model.model_json_schema()
    props = dict(schema.get("properties", {}))
    multipart = dict(props)
    json_props = dict(props)
    for name in fields:
        file = {"type": "string", "format": "binary"}
        text = {"type": "string", "description": "base64 text or a data: URL"}
        multipart[name] = {"type": "array", "items": file} if several else file
        json_props[name] = {"type": "array", "items": text} if several else text
    required = list(fields) + list(schema.get("required", []))
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": multipart, "required": required}},
                "application/json": {"schema": {"type": "object", "properties": json_props, "required": required}},
            },
        }
    }
