"""Training and adapting embedders on your own labelled folders (the ``faceshot[train]`` extra).

Importing this package imports nothing heavy; the modules that need torch raise
:class:`~faceshot.errors.MissingExtraError` with the install command when it is missing::

    from faceshot.train import TrainConfig, load_folders, train, export_model
    data = load_folders(["omniglot/images_background_small1"])
    result = train(data, TrainConfig(loss="triplet", rotations=True))
    print(result.baseline.accuracy, result.trained.accuracy)
    export_model(result.model, "omniglot.onnx")
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "TrainingData", "TrainResult", "train", "export_model", "load_folders", "find_classes"]

_WHERE = {
    "TrainConfig": "trainer", "TrainingData": "trainer", "TrainResult": "trainer", "train": "trainer",
    "export_model": "export", "load_folders": "sources", "find_classes": "folders",
}


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that `import faceshot.train` costs nothing and needs no torch.
    if name not in _WHERE:
        raise AttributeError(f"module 'faceshot.train' has no attribute {name!r}")
    if _WHERE[name] != "folders":
        from faceshot.train._torch import require

        require()
    import importlib

    return getattr(importlib.import_module(f"faceshot.train.{_WHERE[name]}"), name)
