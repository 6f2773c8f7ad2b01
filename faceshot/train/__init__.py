"""Training and adapting embedders on your own labelled folders (the ``faceshot[train]`` extra).

Importing this package imports nothing heavy; the modules that need torch raise
:class:`~faceshot.errors.MissingExtraError` with the install command when it is missing::

    from faceshot.train import TrainConfig, choose, find_classes, load_folders, profile, train, export_model
    recipe = choose(profile(find_classes(["omniglot/images_background_small1"])))  # what `faceshot train` does
    print("\n".join(recipe.lines()))
    data = load_folders(["omniglot/images_background_small1"], size=recipe.size, channels=recipe.channels)
    result = train(data, recipe.config)  # or a TrainConfig(loss="triplet", rotations=True) of your own
    print(result.baseline.accuracy, result.trained.accuracy)
    export_model(result.model, "omniglot.onnx")
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "TrainingData", "TrainResult", "train", "export_model", "load_folders", "find_classes",
           "choose", "profile"]

_WHERE = {
    "TrainConfig": "trainer", "TrainingData": "trainer", "TrainResult": "trainer", "train": "trainer",
    "export_model": "export", "load_folders": "sources", "find_classes": "folders",
    "choose": "recipe", "profile": "recipe",
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
