"""Reading a request: images as ``multipart/form-data`` files or base64 text in JSON, options by pydantic.

One function, :func:`read_request`, serves every endpoint that takes photos: it accepts either body
type, checks the size limit, and validates the other fields with the endpoint's pydantic model (so
``"true"`` in a form and ``true`` in JSON parse alike). Image bytes are not decoded here: the core
does that, and raises the :class:`~faceshot.errors.ImageError` that says what is wrong.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from faceshot.errors import CorruptImageError, ImageTooLargeError, UnsupportedImageError
from faceshot.io import _base64_bytes, _data_url_bytes  # the decoders load_image_base64 uses

__all__ = ["Upload", "read_request", "decode_text_image"]

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Upload:
    """One image of a request: a name for messages (the file name) and its bytes."""

    source: str
    data: bytes

    def stream(self) -> io.BytesIO:
        """The bytes as a stream named after the upload, so enrollment records the file name as the source."""
        stream = io.BytesIO(self.data)
        stream.name = self.source
        return stream


def decode_text_image(text: str, field: str) -> bytes:
    """The bytes of an image sent as base64 text or a ``data:`` URL."""
    name = f"<{field}: base64 text, {len(text)} characters>"
    if text[:5].lower() == "data:":
        return _data_url_bytes(text, name)
    return _base64_bytes("".join(text.split()), name)


def _check_size(data: bytes, source: str, limit: int) -> None:
    if not data:
        raise CorruptImageError(f"{source}: the image is empty (0 bytes)")
    if len(data) > limit:
        raise ImageTooLargeError(f"{source}: {len(data)} bytes; this service accepts images up to {limit} bytes")


async def read_request(
    request: Request, model: type[M], images: dict[str, bool], *, max_bytes: int, required: bool = True
) -> tuple[M, dict[str, list[Upload]]]:
    """The options (validated by ``model``) and the images of a request.

    ``images``: the image fields, each mapped to whether it may hold several images. A missing
    image field is a validation error (422) when ``required``. Raises
    :class:`~faceshot.errors.ImageTooLargeError` (413) for a body or image over ``max_bytes``,
    :class:`~faceshot.errors.UnsupportedImageError` (415) for another body type.
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise ImageTooLargeError(f"the request has {length} bytes; this service accepts up to {max_bytes}")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: dict[str, Any] = {}
    found: dict[str, list[Upload]] = {name: [] for name in images}
    if kind == "multipart/form-data":
        form = await request.form()
        for key in set(form.keys()):
            values = form.getlist(key)
            if key in images:
                for value in values:
                    if isinstance(value, UploadFile):
                        data = await value.read()
                        source = value.filename or key
                    else:
                        data = decode_text_image(str(value), key)
                        source = f"<{key}>"
                    _check_size(data, source, max_bytes)
                    found[key].append(Upload(source, data))
                continue
            texts = [value for value in values if isinstance(value, str)]
            fields[key] = texts if len(texts) > 1 else (texts[0] if texts else None)
    elif kind == "application/json" or kind.endswith("+json"):
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestValidationError([{"loc": ("body",), "msg": f"not valid JSON ({exc})", "type": "json"}]) from None
        if not isinstance(body, dict):
            raise RequestValidationError([{"loc": ("body",), "msg": "the body must be a JSON object", "type": "type"}])
        for key, value in body.items():
            if key not in images:
                fields[key] = value
                continue
            values = value if isinstance(value, list) else [value]
            for i, item in enumerate(values):
                if not isinstance(item, str):
                    raise RequestValidationError(
                        [{"loc": ("body", key), "msg": "an image in JSON is base64 text or a data: URL", "type": "type"}]
                    )
                data = decode_text_image(item, key)
                _check_size(data, f"<{key}[{i}]>" if isinstance(value, list) else f"<{key}>", max_bytes)
                found[key].append(Upload(f"<{key}>", data))
    else:
        raise UnsupportedImageError(
            f"send images as multipart/form-data files or as base64 text in a JSON body, not {kind or 'no content type'!r}"
        )
    errors = []
    for name, several in images.items():
        if required and not found[name]:
            errors.append({"loc": ("body", name), "msg": "an image is required", "type": "missing"})
        elif not several and len(found[name]) > 1:
            errors.append({"loc": ("body", name), "msg": "one image only", "type": "too_long"})
    if errors:
        raise RequestValidationError(errors)
    try:
        options = model.model_validate(_form_json(model, fields) if kind == "multipart/form-data" else fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [{"loc": ("body", *map(str, e["loc"])), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        ) from None
    return options, found


def _form_json(model: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    """Form fields that hold JSON (``metadata``) decoded; a single value where a list is expected, listed."""
    out = dict(fields)
    for name, info in model.model_fields.items():
        if name not in out or out[name] is None:
            continue
        annotation = str(info.annotation)
        if "dict" in annotation and isinstance(out[name], str):
            try:
                out[name] = json.loads(out[name])
            except ValueError:
                pass  # pydantic reports the field
        elif "list" in annotation and isinstance(out[name], str):
            out[name] = [out[name]]
    return out
