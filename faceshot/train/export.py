"""Write a trained network as an ONNX file that :class:`~faceshot.embed.onnx_model.OnnxModelEmbedder` reads.

The graph is written here from the network's weights (batch norm folded into the convolutions),
the way :mod:`faceshot.embed.dlib_onnx` writes dlib's, rather than traced by ``torch.onnx``: the
two networks are small, the result is the same whatever the torch version, and no exporter
dependency (onnxscript) is needed. The file's ``metadata_props`` say what it takes (see
:mod:`faceshot.embed.onnx_model`) and how it was trained.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceshot.embed.onnx_model import FORMAT
from faceshot.errors import ConfigError
from faceshot.onnx_graphs import OPSET, write_atomically
from faceshot.train.backbones import Backbone, FaceAdapter, KochNet, SmallCNN

__all__ = ["to_onnx", "export_model"]



def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def _small_cnn(model: SmallCNN, helper: Any, numpy_helper: Any, TensorProto: Any) -> tuple[list, list, Any]:
    nodes, weights = [], []

    def constant(name: str, array: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    nodes.append(helper.make_node("Cast", ["images"], ["float"], to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Mul", ["float", constant("scale", np.array(1 / 255, dtype=np.float32))], ["scaled"]))
    nodes.append(helper.make_node("Transpose", ["scaled"], ["x0"], perm=[0, 3, 1, 2]))
    layers = list(model.blocks)
    x = "x0"
    for block in range(4):
        conv, norm = layers[4 * block], layers[4 * block + 1]
        scale = _array(norm.weight) / np.sqrt(_array(norm.running_var) + norm.eps)
        w = _array(conv.weight) * scale[:, None, None, None]
        b = (_array(conv.bias) - _array(norm.running_mean)) * scale + _array(norm.bias)
        y = f"b{block}"
        nodes.append(helper.make_node("Conv", [x, constant(f"{y}_w", w), constant(f"{y}_b", b)], [f"{y}_conv"],
                                      kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"{y}_conv"], [f"{y}_relu"]))
        nodes.append(helper.make_node("MaxPool", [f"{y}_relu"], [f"{y}_pool"], kernel_shape=[2, 2], strides=[2, 2]))
        x = f"{y}_pool"
    nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
    nodes.append(helper.make_node("LpNormalization", ["flat"], ["embedding"], axis=1, p=2))
    inputs = [helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", model.size, model.size, model.channels])]
    return nodes, weights, inputs


def _koch(model: KochNet, helper: Any, numpy_helper: Any, TensorProto: Any) -> tuple[list, list, Any]:
    weights = [numpy_helper.from_array(np.array(1 / 255, dtype=np.float32), "scale")]
    nodes = [helper.make_node("Cast", ["images"], ["float"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["float", "scale"], ["scaled"]),
             helper.make_node("Transpose", ["scaled"], ["x0"], perm=[0, 3, 1, 2])]
    x = "x0"
    convs = [layer for layer in model.convs if isinstance(layer, torch.nn.Conv2d)]
    for i, conv in enumerate(convs):
        weights += [numpy_helper.from_array(_array(conv.weight), f"c{i}_w"), numpy_helper.from_array(_array(conv.bias), f"c{i}_b")]
        k = conv.kernel_size[0]
        nodes.append(helper.make_node("Conv", [x, f"c{i}_w", f"c{i}_b"], [f"c{i}_conv"], kernel_shape=[k, k]))
        nodes.append(helper.make_node("Relu", [f"c{i}_conv"], [f"c{i}_relu"]))
        x = f"c{i}_relu"
        if i < 3:
            nodes.append(helper.make_node("MaxPool", [x], [f"c{i}_pool"], kernel_shape=[2, 2], strides=[2, 2]))
            x = f"c{i}_pool"
    weights += [numpy_helper.from_array(_array(model.fc.weight).T.copy(), "fc_w"), numpy_helper.from_array(_array(model.fc.bias), "fc_b")]
    nodes += [helper.make_node("Flatten", [x], ["flat"], axis=1),
              helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["features"]),
              helper.make_node("Sigmoid", ["features"], ["active"]),
              helper.make_node("LpNormalization", ["active"], ["embedding"], axis=1, p=2)]
    inputs = [helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", model.size, model.size, model.channels])]
    return nodes, weights, inputs


def _adapter(model: FaceAdapter, helper: Any, numpy_helper: Any, TensorProto: Any) -> tuple[list, list, Any]:
    weights = [
        numpy_helper.from_array(_array(model.inner.weight).T.copy(), "inner_w"),
        numpy_helper.from_array(_array(model.inner.bias), "inner_b"),
        numpy_helper.from_array(_array(model.outer.weight).T.copy(), "outer_w"),
        numpy_helper.from_array(_array(model.outer.bias), "outer_b"),
    ]
    nodes = [
        helper.make_node("Gemm", ["vectors", "inner_w", "inner_b"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["active"]),
        helper.make_node("Gemm", ["active", "outer_w", "outer_b"], ["delta"]),
        helper.make_node("Add", ["vectors", "delta"], ["moved"]),
        helper.make_node("LpNormalization", ["moved"], ["embedding"], axis=1, p=2),
    ]
    inputs = [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["N", model.dim_in])]
    return nodes, weights, inputs


def to_onnx(model: Backbone, name: str, properties: dict[str, Any] | None = None) -> Any:
    """The ``onnx.ModelProto`` of ``model`` (checked), named ``name``, with faceshot's metadata.

    ``properties``: more metadata (values become strings; dicts and lists JSON).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if isinstance(model, SmallCNN):
        nodes, weights, inputs = _small_cnn(model, helper, numpy_helper, TensorProto)
    elif isinstance(model, KochNet):
        nodes, weights, inputs = _koch(model, helper, numpy_helper, TensorProto)
    elif isinstance(model, FaceAdapter):
        nodes, weights, inputs = _adapter(model, helper, numpy_helper, TensorProto)
    else:
        raise ConfigError(f"cannot export a {type(model).__name__} to ONNX")
    outputs = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", model.dim])]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=weights)
    proto = helper.make_model(graph, producer_name="faceshot", opset_imports=[helper.make_opsetid("", OPSET)],
                              doc_string=f"faceshot train: {model.name}")
    proto.ir_version = 8  # readable by older onnxruntimes, as the dlib conversion
    props = {"faceshot.format": FORMAT, "faceshot.name": name, "faceshot.backbone": model.name, **model.input_kind()}
    for key, value in (properties or {}).items():
        props[f"faceshot.{key}"] = value if isinstance(value, str) else json.dumps(value)
    helper.set_model_props(proto, props)
    onnx.checker.check_model(proto)
    return proto


def export_model(model: Backbone, path: str | os.PathLike, name: str | None = None,
                 properties: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``path`` as ONNX (atomically: a reader never sees half a file); return the path.

    ``name`` defaults to the file's stem; it becomes the embedder's name and, with a digest of the
    file, the vector space galleries record.
    """
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise ConfigError(f"a model file must end in .onnx (faceshot recognises models by it): {path}")
    proto = to_onnx(model, name or path.stem, properties)
    write_atomically(path, proto.SerializeToString())
    return path
