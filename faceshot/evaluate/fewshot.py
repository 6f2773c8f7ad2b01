"""N-way K-shot evaluation: can a model tell N classes apart after seeing K examples of each?

An *episode* draws N classes, K labelled *support* images of each and some *query* images; each
query is given the class whose support is nearest (the mean of its K unit vectors, renormalised:
the prototype). Accuracy is averaged over episodes, with a 95% interval, as Matching Networks and
Prototypical Networks report it.

The official Omniglot test of Lake et al. (``all_runs_20way_oneshot/runNN``) is read and scored
as they do: in each of the 20 runs, each of the 20 test images is given the class of the nearest of
the 20 training images; the figure is the mean accuracy over the 400 trials.

Only numpy here: a model exported to ONNX is evaluated without torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from faceshot.errors import ConfigError

if TYPE_CHECKING:
    from faceshot.engine import Engine
    from faceshot.spec import EngineSpec

__all__ = [
    "FewShotResult",
    "Episode",
    "episodes",
    "evaluate_episodes",
    "OmniglotRun",
    "read_omniglot_runs",
    "is_omniglot_runs",
    "score_omniglot_runs",
    "file_vectors",
    "evaluate_folder",
]


@dataclass(frozen=True)
class FewShotResult:
    """Accuracy over episodes (or over Lake's runs), with the 95% interval of the mean."""

    accuracy: float
    ci95: float
    ways: int
    shots: int
    episodes: int
    queries: int  # classification trials in all

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Episode:
    """One episode: support images (``shots`` per way, way by way), queries, and each query's way."""

    support: np.ndarray  # (ways * shots,) image indices, class-major
    queries: np.ndarray  # (q,) image indices
    answers: np.ndarray  # (q,) the right way (0..ways-1) of each query


def episodes(
    labels: np.ndarray, *, ways: int, shots: int, queries: int = 5, count: int = 600, seed: int = 0
) -> list[Episode]:
    """``count`` episodes over ``labels`` (one label per image), the same for a given seed.

    Only classes with at least ``shots + 1`` images take part; each gives up to ``queries``
    query images. Raises :class:`ConfigError` when fewer than ``ways`` classes qualify.
    """
    if ways < 2 or shots < 1 or queries < 1 or count < 1:
        raise ConfigError(f"need ways >= 2, shots >= 1, queries >= 1, episodes >= 1; got {ways}, {shots}, {queries}, {count}")
    labels = np.asarray(labels)
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    eligible = sorted(c for c, members in by_class.items() if len(members) > shots)
    if len(eligible) < ways:
        raise ConfigError(
            f"{ways}-way {shots}-shot episodes need {ways} classes with at least {shots + 1} images; "
            f"there are {len(eligible)}"
        )
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(count):
        chosen = rng.choice(eligible, size=ways, replace=False)
        support, query, answers = [], [], []
        for way, c in enumerate(chosen):
            members = rng.permutation(by_class[c])
            support.extend(members[:shots])
            picked = members[shots : shots + queries]
            query.extend(picked)
            answers.extend([way] * len(picked))
        result.append(Episode(np.array(support), np.array(query), np.array(answers)))
    return result


def _prototypes(support: np.ndarray, ways: int) -> np.ndarray:
    prototypes = support.reshape(ways, -1, support.shape[1]).mean(axis=1)
    return prototypes / np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-12)


def evaluate_episodes(vectors: np.ndarray, drawn: Sequence[Episode], *, ways: int, shots: int) -> FewShotResult:
    """Accuracy of nearest-prototype classification (cosine) of each episode's queries."""
    vectors = np.asarray(vectors, dtype=np.float32)
    per_episode = np.empty(len(drawn))
    trials = 0
    for i, episode in enumerate(drawn):
        prototypes = _prototypes(vectors[episode.support], ways)
        guesses = np.argmax(vectors[episode.queries] @ prototypes.T, axis=1)
        per_episode[i] = np.mean(guesses == episode.answers)
        trials += len(episode.queries)
    return _result(per_episode, ways, shots, trials)


def _result(per_group: np.ndarray, ways: int, shots: int, trials: int) -> FewShotResult:
    spread = 1.96 * per_group.std(ddof=1) / np.sqrt(len(per_group)) if len(per_group) > 1 else 0.0
    return FewShotResult(float(per_group.mean()), float(spread), ways, shots, len(per_group), trials)


# --- the official Omniglot runs --------------------------------------------------------------------


@dataclass(frozen=True)
class OmniglotRun:
    """One of Lake et al.'s runs: the training images (one per class) and the test images with their answers."""

    name: str
    training: tuple[Path, ...]
    test: tuple[Path, ...]
    answers: np.ndarray  # (tests,) index into ``training`` of each test image's class


def is_omniglot_runs(folder: str | Path) -> bool:
    """Whether ``folder`` is laid out as ``runNN/class_labels.txt`` (or is one such run)."""
    folder = Path(folder)
    return (folder / "class_labels.txt").is_file() or any(folder.glob("run*/class_labels.txt"))


def read_omniglot_runs(folder: str | Path) -> list[OmniglotRun]:
    """The runs in ``folder`` (``runNN/`` each with ``class_labels.txt``, ``training/``, ``test/``).

    ``class_labels.txt`` has one line per test image: ``runNN/test/itemNN.png runNN/training/classNN.png``.
    """
    folder = Path(folder)
    run_dirs = [folder] if (folder / "class_labels.txt").is_file() else sorted(p.parent for p in folder.glob("run*/class_labels.txt"))
    if not run_dirs:
        raise ConfigError(f"{folder} holds no Omniglot run (runNN/class_labels.txt)")
    runs = []
    for run_dir in run_dirs:
        pairs = []
        for number, line in enumerate((run_dir / "class_labels.txt").read_text().splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 2:
                raise ConfigError(f"{run_dir / 'class_labels.txt'}:{number}: expected 'test/itemNN.png training/classNN.png'")
            # The paths in the file start with the run's own name; take them relative to the run.
            pairs.append(tuple(run_dir / Path(*Path(f).parts[1:]) for f in fields))
        training = tuple(sorted(run_dir.glob("training/*.png")))
        index = {path: i for i, path in enumerate(training)}
        missing = [str(p) for pair in pairs for p in pair if not p.is_file()]
        if missing or not training:
            raise ConfigError(f"{run_dir}: missing images, e.g. {missing[0] if missing else 'training/*.png'}")
        runs.append(OmniglotRun(run_dir.name, training, tuple(t for t, _ in pairs),
                                np.array([index[c] for _, c in pairs], dtype=np.int64)))
    return runs


def score_omniglot_runs(runs: Sequence[OmniglotRun], embed: Callable[[list[Path]], np.ndarray]) -> FewShotResult:
    """Lake et al.'s score: each test image takes the class of its nearest training image (cosine).

    ``embed(paths) -> (N, dim)`` unit vectors. One run is one group of the 95% interval.
    """
    per_run = np.empty(len(runs))
    trials = 0
    for i, run in enumerate(runs):
        vectors = embed([*run.training, *run.test])
        training, test = vectors[: len(run.training)], vectors[len(run.training) :]
        guesses = np.argmax(test @ training.T, axis=1)
        per_run[i] = np.mean(guesses == run.answers)
        trials += len(run.test)
    ways = len(runs[0].training) if runs else 0
    return _result(per_run, ways, 1, trials)


# --- a model on a folder -----------------------------------------------------------------------------


def file_vectors(
    paths: Sequence[Path], model: str, *, detector: str = "hog", workers: int | None = None,
    progress: Callable[[int, int], None] | None = None, embedder: Any = None,
    engine: "Engine | EngineSpec | None" = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The unit vectors of ``paths`` under ``model`` and the index of each path that has one.

    ``model``: a registered embedder name or a ``.onnx`` file (``embedder``: that model, if already
    loaded). Models of whole images see every file; face models see the largest face of each photo,
    and photos without a face are left out, found by ``engine`` (or its spec: detector, options and
    pixel limit; its embedder must be ``model``'s), else by an engine of ``detector`` and the model.
    """
    from faceshot.embed.onnx_model import WHOLE_IMAGE
    from faceshot.spec import EngineSpec, build_embedder

    embedder = embedder or build_embedder(model)
    if embedder.aligner == WHOLE_IMAGE:
        vectors = embedder.embed_files(list(paths))
        return vectors, np.arange(len(paths))
    from faceshot.bulk import one_vector_per_file

    if engine is None:
        engine = EngineSpec(detector, embedder)
    found = one_vector_per_file(paths, engine=engine, workers=workers, progress=progress)
    kept = np.array([i for i, path in enumerate(paths) if str(path) in found], dtype=np.int64)
    vectors = np.stack([found[str(paths[i])] for i in kept]) if len(kept) else np.zeros((0, embedder.dim), np.float32)
    return vectors, kept


def evaluate_folder(
    folder: str | Path, model: str, *, ways: int = 5, shots: int = 1, count: int = 600, queries: int = 5,
    seed: int = 0, detector: str = "hog", workers: int | None = None,
    progress: Callable[[int, int], None] | None = None, max_pixels: int | None = None,
) -> FewShotResult:
    """N-way K-shot accuracy of ``model`` on ``folder``: labelled sub-folders, or Lake's Omniglot runs.

    On Omniglot runs (``runNN/class_labels.txt``), ``ways``, ``shots`` and ``count`` are the runs'
    own (20-way 1-shot, one group per run) and each test image is scored as Lake et al. do.
    """
    from faceshot.io import DEFAULT_MAX_PIXELS
    from faceshot.spec import EngineSpec, build_embedder

    embedder = build_embedder(model)  # a bad model file fails before any image is read
    # One description for every image of the run: the detector (with its options), the model
    # (built once, shared with the engine) and the pixel limit.
    engine = EngineSpec(detector, embedder, max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
    if is_omniglot_runs(folder):
        runs = read_omniglot_runs(folder)

        def embed(paths: list[Path]) -> np.ndarray:
            vectors, kept = file_vectors(paths, model, workers=workers, embedder=embedder, engine=engine)
            if len(kept) != len(paths):
                raise ConfigError(f"{model} found no face in {len(paths) - len(kept)} images of the run: use a model of whole images")
            return vectors

        return score_omniglot_runs(runs, embed)
    from faceshot.train.folders import find_classes

    images = find_classes([folder], min_images=shots + 1)
    vectors, kept = file_vectors(images.paths, model, workers=workers, progress=progress,
                                 embedder=embedder, engine=engine)
    labels = images.labels[kept]
    drawn = episodes(labels, ways=ways, shots=shots, queries=queries, count=count, seed=seed)
    return evaluate_episodes(vectors, drawn, ways=ways, shots=shots)
