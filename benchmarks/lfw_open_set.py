"""One-shot open-set identification on LFW, and how the identification threshold moves with gallery size.

    python benchmarks/lfw_open_set.py [--lfw ../shared/datasets/lfw] [--detector hog] [--json OUT] [--write-calibration]

Protocol (one-shot, open set): the gallery holds the first image of each of the 1,680 people with
two or more images; their other 7,484 images are the mated probes; the 4,069 people with a single
image are strangers (non-mated probes). For each probe the best-scoring enrolled person is the
answer when the score reaches the threshold, "unknown" otherwise. Reported:

- rank-1 identification rate: mated probes whose best-scoring person is the right one;
- FPIR: non-mated probes that are matched to someone (the threshold for a target FPIR is set on
  their best scores); FNIR: mated probes not named correctly (wrong person first, or below threshold).

faceshot's default vectors (``dlib-resnet``: mirror-averaged unit vectors, cosine score) are compared
in the same run with face_recognition's rule (raw dlib vector of one pass; the nearest enrolled face
if its Euclidean distance is at most 0.6, else unknown), and with faceshot's 1:1 verification
threshold used for 1:N. Then: the thresholds for FPIR 1% and 0.1% at gallery sizes 10 to 1,680
(random subsets of the enrolled people), a few-shot variant that measures how a person's several
faces should be aggregated (best face, mean template, mean of the best two), and a check that
:class:`faceshot.gallery.Gallery` gives the same answers as the matrix computation used here.

Faces: the ``--detector`` text (default: faceshot's default detector), the most central face where
there are several (LFW crops are centred on the labelled person). An image in which no face is found is a probe that
gets no answer: a miss for a mated probe, a correct rejection for a non-mated one. An enrollment
image without a face is replaced by the person's next image; a person with no usable image at all
moves to the strangers' side. The descriptors are cached in ``.cache/lfw_embeddings-DETECTOR.npz``
(keyed by image path) so that a second run skips the minutes of embedding.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceshot.embed.dlib_onnx import DlibResnetOnnxEmbedder
from faceshot.choice import central
from faceshot.engine import Engine
from faceshot.errors import ConfigError
from faceshot.match import Calibration
from faceshot.spec import DEFAULT_DETECTOR, build_detector

ROOT = Path(__file__).resolve().parents[1]
FPIRS = (1e-2, 1e-3)
GALLERY_SIZES = (10, 100, 1000)
REPEATS = 50
SHOTS = (1, 2, 3, 5)
SEED = 0
FR_DISTANCE = 0.6  # face_recognition's compare_faces tolerance
FIELDS = ("raw", "mirror", "faces", "central_is_largest")  # what the cache keeps per image
CALIBRATION_OUT = ROOT / "benchmarks" / "results" / "dlib-resnet-identify.json"

_engine: Engine | None = None


# -- embedding ----------------------------------------------------------------------------------
def _start(detector: str) -> None:
    global _engine
    _engine = Engine(detector=detector, embedder=DlibResnetOnnxEmbedder(mirror=False, threads=1))


def cache_file(detector: str) -> Path:
    """Where the descriptors found with ``detector`` are kept (one file per detector text)."""
    slug = "".join(c if c.isalnum() or c in "-=." else "_" for c in detector)
    return ROOT / ".cache" / f"lfw_embeddings-{slug}.npz"


def settings(detector: Any) -> Any:
    """A detector's options (a fallback chain's members', in order), as JSON-ready values."""
    if hasattr(detector, "members"):
        return [settings(member) for member in detector.members]
    return {key: str(value) for key, value in sorted(vars(detector).items()) if not key.startswith("_")}


def pipeline(detector: str) -> str:
    """What the cached vectors depend on: a cache written with other detector settings is not reused."""
    return json.dumps({"detector": detector, "settings": settings(build_detector(detector)),
                       "descriptors": "dlib-resnet (onnx)"}, sort_keys=True)


def _describe(path: str) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """dlib's raw descriptors (run by the ONNX conversion) of the central face's chip and of its
    mirror image, the faces found, and whether the central face is the largest."""
    assert _engine is not None
    image = _engine.load(path)
    faces = _engine.detector.detect(image)
    if not faces:
        return np.full(128, np.nan, np.float32), np.full(128, np.nan, np.float32), 0, False
    face = central(faces, image.shape)
    chip = _engine.aligner.align(image, [face])[0]
    raw, mirrored = _engine.embedder.descriptors(np.stack([chip, chip[:, ::-1]]))  # type: ignore[attr-defined]
    return raw, mirrored, len(faces), face is faces[0]


def describe_all(images: Path, paths: list[str], detector: str,
                 workers: int | None = None) -> tuple[dict[str, np.ndarray], float | None]:
    """Descriptors of every image, from the cache where present; the embedding time of this run (None if cached).

    ``workers``: processes that embed (default one per core)."""
    cached: dict[str, dict[str, Any]] = {}
    stored: dict[str, np.ndarray] = {}
    CACHE = cache_file(detector)
    if CACHE.is_file():
        with np.load(CACHE) as data:
            if "pipeline" in data and str(data["pipeline"]) == pipeline(detector):
                stored = {key: data[key] for key in ("paths",) + FIELDS}
            else:
                print(f"{CACHE} was written with other detector settings: embedding again", flush=True)
    if stored:
        for i, name in enumerate(stored.pop("paths")):
            cached[str(name)] = {key: values[i] for key, values in stored.items()}
    missing = [p for p in paths if p not in cached]
    seconds = None
    if missing:
        started = time.perf_counter()
        workers = workers or os.cpu_count()
        print(f"embedding {len(missing)} images with {detector} in {workers} processes ...", flush=True)
        with ProcessPoolExecutor(workers, initializer=_start, initargs=(detector,)) as pool:
            for name, (raw, mirror, faces, largest) in zip(
                missing, pool.map(_describe, [str(images / p) for p in missing], chunksize=16)
            ):
                cached[name] = {"raw": raw, "mirror": mirror, "faces": faces, "central_is_largest": largest}
        seconds = time.perf_counter() - started
        names = sorted(cached)
        CACHE.parent.mkdir(exist_ok=True)
        np.savez(
            CACHE,
            paths=np.array(names),
            pipeline=np.array(pipeline(detector)),
            **{key: np.stack([cached[n][key] for n in names]) for key in FIELDS},
        )
    arrays = {key: np.stack([cached[p][key] for p in paths]) for key in FIELDS}
    return arrays, seconds


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


# -- protocol -----------------------------------------------------------------------------------
@dataclass
class Split:
    """Who is enrolled with which images, and which images probe."""

    people: list[str]  # enrolled people
    enrolled: list[list[int]]  # image indices of each enrolled person
    probes: np.ndarray  # image indices
    truth: np.ndarray  # enrolled person index of each probe, -1 for strangers
    replaced: int  # enrollment images without a face, replaced by a later image
    moved: int  # people with no usable image, moved to the strangers' side


def split(
    by_person: dict[str, list[int]], has_face: np.ndarray, *, shots: int, min_images: int, first_probe: int = 0
) -> Split:
    """Enroll the first ``shots`` usable images of each person with at least ``min_images`` images.

    The images after them (from ``first_probe`` on, if that is later) probe; people with a
    single image are the strangers; people with 2 to ``min_images - 1`` images take no part.
    """
    people, enrolled, probes, truth = [], [], [], []
    strangers: list[int] = []
    replaced = moved = 0
    for name, images in by_person.items():
        if len(images) == 1:
            strangers += images
            continue
        if len(images) < min_images:
            continue
        chosen: list[int] = []
        position = 0
        while len(chosen) < shots and position < len(images):
            if has_face[images[position]]:
                chosen.append(images[position])
            else:
                replaced += 1  # a faceless enrollment photo is refused, not kept as a probe
            position += 1
        if not chosen:
            moved += 1
            strangers += images
            continue
        people.append(name)
        enrolled.append(chosen)
        rest = images[max(position, first_probe):]
        probes += rest
        truth += [len(people) - 1] * len(rest)
    return Split(
        people, enrolled, np.array(probes + strangers), np.array(truth + [-1] * len(strangers)), replaced, moved
    )


@dataclass
class Outcome:
    """Best person and score of every probe (score -inf: no face, no answer), and the truth."""

    best: np.ndarray
    top: np.ndarray
    truth: np.ndarray

    @property
    def mated(self) -> np.ndarray:
        return self.truth >= 0

    @property
    def correct(self) -> np.ndarray:
        return (self.top == self.truth) & np.isfinite(self.best)

    def rank1(self) -> float:
        return float(self.correct[self.mated].mean())

    def fpir(self, threshold: float) -> float:
        return float((self.best[~self.mated] >= threshold).mean())

    def fnir(self, threshold: float) -> float:
        hit = self.correct & (self.best >= threshold)
        return float(1.0 - hit[self.mated].mean())

    def threshold_for(self, fpir: float) -> float:
        """The lowest threshold that lets at most ``fpir`` of the strangers match someone."""
        strangers = np.sort(self.best[~self.mated])[::-1]
        allowed = int(np.floor(fpir * len(strangers)))
        if allowed == 0:
            return float(np.nextafter(strangers[0], np.inf))
        if allowed >= len(strangers) or not np.isfinite(strangers[allowed]):
            return -np.inf
        return float((strangers[allowed - 1] + strangers[allowed]) / 2)


def outcome(scores: np.ndarray, truth: np.ndarray) -> Outcome:
    """``scores``: probes × people, higher is better, -inf for a probe without a face."""
    top = np.argmax(scores, axis=1)
    return Outcome(scores[np.arange(len(scores)), top], top, truth)


def person_scores(probe_vectors: np.ndarray, faces: np.ndarray, owner: np.ndarray, people: int, how: str) -> np.ndarray:
    """Probe × person scores from probe × face cosines, aggregated per person."""
    if how == "mean":
        templates = np.zeros((people, faces.shape[1]))
        np.add.at(templates, owner, faces)
        return probe_vectors @ unit(templates).T
    face_scores = probe_vectors @ faces.T
    shots = np.bincount(owner, minlength=people).max()
    grid = np.full((len(probe_vectors), people, shots), -np.inf)
    slot = np.concatenate([np.arange(n) for n in np.bincount(owner, minlength=people)])
    order = np.argsort(owner, kind="stable")
    grid[:, owner[order], slot] = face_scores[:, order]
    grid = -np.sort(-grid, axis=2)  # best face first
    if how == "max":
        return grid[:, :, 0]
    if how == "top2":  # mean of the two best faces (the best one alone when there is one)
        second = np.where(np.isfinite(grid[:, :, 1]), grid[:, :, 1], grid[:, :, 0]) if shots > 1 else grid[:, :, 0]
        return (grid[:, :, 0] + second) / 2
    raise ValueError(how)


def search(
    vectors: np.ndarray, has_face: np.ndarray, s: Split, how: str = "max", metric: str = "cosine"
) -> tuple[Outcome, np.ndarray]:
    """The outcome of every probe of ``s``, and the probe × person scores it came from."""
    faces = np.concatenate(s.enrolled)
    owner = np.concatenate([[i] * len(images) for i, images in enumerate(s.enrolled)])
    probes = np.nan_to_num(vectors[s.probes])
    if metric == "cosine":
        scores = person_scores(probes, vectors[faces], owner, len(s.people), how)
    else:  # raw Euclidean distance, as a score: its negative
        gallery = vectors[faces]
        squared = (probes**2).sum(1)[:, None] + (gallery**2).sum(1)[None, :] - 2 * probes @ gallery.T
        scores = -np.sqrt(np.maximum(squared, 0.0))
    scores[~has_face[s.probes]] = -np.inf
    return outcome(scores, s.truth), scores


def restrict(result: Outcome, scores: np.ndarray, keep: np.ndarray) -> Outcome:
    """The outcome with only the enrolled people in ``keep``: their mated probes and every stranger."""
    relabel = np.full(scores.shape[1], -1)
    relabel[keep] = np.arange(len(keep))
    rows = (result.truth < 0) | np.isin(result.truth, keep)
    return outcome(scores[np.ix_(rows, keep)], np.where(result.truth[rows] >= 0, relabel[result.truth[rows]], -1))


# -- reporting ----------------------------------------------------------------------------------
def markdown(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def check_gallery(images: Path, paths: list[str], vectors: np.ndarray, faces: np.ndarray, s: Split,
                  rng: np.random.Generator, how: str, detector: str, people: int = 100, probes: int = 200) -> dict[str, Any]:
    """Enroll a slice in a real Gallery and compare its top-1 answers with the matrix computation.

    Only single-face photos are used: the gallery enrolls and reports the largest face, this
    benchmark the central one, and they are the same face when there is one.
    """
    from faceshot.gallery import Gallery

    single = faces == 1
    eligible = [i for i, imgs in enumerate(s.enrolled) if single[imgs].all()]
    chosen = np.sort(rng.choice(eligible, min(people, len(eligible)), replace=False))
    members = set(chosen.tolist())
    mated = [p for p, t in zip(s.probes, s.truth) if t in members and single[p]]
    strangers = [p for p, t in zip(s.probes, s.truth) if t < 0 and single[p]]
    picked = np.array(list(rng.choice(mated, probes // 2, replace=False))
                      + list(rng.choice(strangers, probes // 2, replace=False)))
    sub = Split([s.people[i] for i in chosen], [s.enrolled[i] for i in chosen], picked,
                np.zeros(len(picked), int), 0, 0)
    expected, _ = search(vectors, faces > 0, sub, how=how)
    started = time.perf_counter()
    agree, worst = 0, 0.0
    with tempfile.TemporaryDirectory() as folder, Gallery(Path(folder) / "check.db", aggregation=how, engine=Engine(detector=detector)) as gallery:
        for name, enrolled in zip(sub.people, sub.enrolled):
            gallery.enroll(name, [str(images / paths[i]) for i in enrolled], force=True)
        for n, p in enumerate(picked):
            found = gallery.identify(str(images / paths[p]), threshold=-1.0)
            name, score = found[0].candidates[0]
            agree += name == sub.people[expected.top[n]]
            worst = max(worst, abs(score - float(expected.best[n])))
    return {"aggregation": how, "people": len(chosen), "faces": sum(map(len, sub.enrolled)), "probes": len(picked),
            "same_top1": agree, "max_score_difference": worst, "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "datasets" / "lfw")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help="detector text (engine grammar), e.g. hog>cnn-onnx")
    parser.add_argument("--json", type=Path, default=None, help="also write every table here as JSON")
    parser.add_argument("--fpir", type=float, default=1e-2, help="FPIR of the default identification threshold")
    parser.add_argument("--write-calibration", action="store_true",
                        help=f"write {CALIBRATION_OUT.relative_to(ROOT)} (the default identification operating point)")
    parser.add_argument("--skip-gallery-check", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    report: dict[str, Any] = {}

    images = args.lfw / "images"
    paths = sorted(f"{d.name}/{f.name}" for d in images.iterdir() if d.is_dir() for f in d.glob("*.jpg"))
    arrays, seconds = describe_all(images, paths, args.detector)
    has_face = arrays["faces"] > 0
    raw = np.nan_to_num(arrays["raw"]).astype(np.float64)
    mirror = np.nan_to_num(arrays["mirror"]).astype(np.float64)
    with np.errstate(invalid="ignore"):
        faceshot_vectors = np.nan_to_num(unit(unit(raw) + unit(mirror)))  # what dlib-resnet computes
        single_vectors = np.nan_to_num(unit(raw))  # dlib-resnet-single
    how_long = "descriptors from the cache" if seconds is None else f"embedded in {seconds:.0f} s"
    print(f"{len(paths)} images; {how_long}; no face found in {int((~has_face).sum())}; "
          f"several faces in {int((arrays['faces'] > 1).sum())} (the central one used; it was not the largest "
          f"in {int((has_face & ~arrays['central_is_largest']).sum())})")
    report["images"] = {"detector": args.detector, "total": len(paths), "no_face": int((~has_face).sum()),
                        "several_faces": int((arrays["faces"] > 1).sum()),
                        "embedding_seconds": None if seconds is None else round(seconds)}

    by_person: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        by_person.setdefault(p.split("/")[0], []).append(i)

    # -- 1. one-shot open set -----------------------------------------------------------------
    one = split(by_person, has_face, shots=1, min_images=2)
    mated = one.truth >= 0
    print(f"\none-shot: {len(one.people)} people enrolled, {int(mated.sum())} mated probes "
          f"({int((~has_face[one.probes][mated]).sum())} without a face), {int((~mated).sum())} strangers "
          f"({int((~has_face[one.probes][~mated]).sum())} without a face); enrollment photos without a face "
          f"replaced: {one.replaced}; people moved to the strangers: {one.moved}")
    report["one_shot"] = {"enrolled": len(one.people), "mated_probes": int(mated.sum()),
                          "nonmated_probes": int((~mated).sum()), "enrollment_replaced": one.replaced,
                          "moved_to_strangers": one.moved}
    verify_threshold = Calibration.bundled("dlib-resnet").threshold
    fs, fs_scores = search(faceshot_vectors, has_face, one)
    single, _ = search(single_vectors, has_face, one)
    fr, fr_scores = search(raw, has_face, one, metric="euclidean")
    rows = []

    def row(rule: str, result: Outcome, threshold: float, shown: str) -> None:
        rows.append({"rule": rule, "threshold": shown, "rank1": result.rank1(),
                     "fpir": result.fpir(threshold), "fnir": result.fnir(threshold)})

    for fpir in FPIRS:
        t = fs.threshold_for(fpir)
        row(f"faceshot `dlib-resnet`, cosine, threshold for FPIR {100 * fpir:g}%", fs, t, f"{t:.4f}")
    row("faceshot `dlib-resnet`, 1:1 default threshold", fs, verify_threshold, f"{verify_threshold:.4f}")
    for fpir in FPIRS:
        t = single.threshold_for(fpir)
        row(f"`dlib-resnet-single` (no mirror), cosine, threshold for FPIR {100 * fpir:g}%", single, t, f"{t:.4f}")
    row("face_recognition rule: raw distance ≤ 0.6", fr, -FR_DISTANCE, f"d ≤ {FR_DISTANCE}")
    for fpir in FPIRS:
        t = fr.threshold_for(fpir)
        row(f"face_recognition vectors, raw distance, threshold for FPIR {100 * fpir:g}%", fr, t, f"d ≤ {-t:.4f}")
    report["one_shot"]["rules"] = rows
    print(f"\n### One-shot open-set identification ({len(one.people):,} enrolled, {int(mated.sum()):,} mated probes, "
          f"{int((~mated).sum()):,} strangers)\n")
    print(markdown(["rule", "threshold", "rank-1", "FPIR", "FNIR"],
                   [[r["rule"], r["threshold"], pct(r["rank1"]), pct(r["fpir"]), pct(r["fnir"])] for r in rows]))

    # -- 2. threshold against gallery size ----------------------------------------------------
    calibration = Calibration.bundled("dlib-resnet")

    def rule_figures(result: Outcome, s: Split, fpir: float = 1e-2) -> dict[str, dict[str, float]]:
        """FPIR and FNIR at the threshold whose 1:1 FAR is ``fpir`` over the people, or the faces, searched."""
        figures = {}
        for name, count in (("rule_people", len(s.people)), ("rule_faces", sum(map(len, s.enrolled)))):
            t = calibration.threshold_for(fpir / count)
            figures[name] = {"threshold": t, "fpir": result.fpir(t), "fnir": result.fnir(t)}
        return figures
    default_threshold = fs.threshold_for(args.fpir)
    sizes = []
    for size in GALLERY_SIZES + (len(one.people),):
        repeats = REPEATS if size < len(one.people) else 1
        figures: dict[str, list[float]] = {}
        rule_threshold = calibration.threshold_for(1e-2 / size)
        for _ in range(repeats):
            keep = np.sort(rng.choice(len(one.people), size, replace=False))
            sub = restrict(fs, fs_scores, keep)
            sub_fr = restrict(fr, fr_scores, keep)
            values = {"rank1": sub.rank1()}
            for fpir in FPIRS:
                t = sub.threshold_for(fpir)
                values[f"threshold_fpir_{fpir:g}"] = t
                values[f"fnir_fpir_{fpir:g}"] = sub.fnir(t)
            values["fpir_at_1to1"] = sub.fpir(verify_threshold)
            values["fnir_at_1to1"] = sub.fnir(verify_threshold)
            values["fpir_at_default"] = sub.fpir(default_threshold)
            values["fnir_at_default"] = sub.fnir(default_threshold)
            values["fpir_fr_rule"] = sub_fr.fpir(-FR_DISTANCE)
            values["fpir_at_rule"] = sub.fpir(rule_threshold)
            for key, value in values.items():
                figures.setdefault(key, []).append(value)
        entry = {"size": size, "repeats": repeats}
        for key, values_ in figures.items():
            entry[key] = float(np.mean(values_))
            if repeats > 1 and key.startswith("threshold"):
                entry[key + "_sd"] = float(np.std(values_))
        # What the 1:1 FAR table predicts if each stranger's N comparisons were independent.
        for fpir in FPIRS:
            far = 1.0 - (1.0 - fpir) ** (1.0 / size)
            try:
                entry[f"predicted_threshold_fpir_{fpir:g}"] = calibration.threshold_for(far)
            except ConfigError:  # below the smallest FAR the table measured
                entry[f"predicted_threshold_fpir_{fpir:g}"] = None
        sizes.append(entry)
    report["gallery_size"] = sizes

    def sd(entry: dict[str, Any], key: str) -> str:
        spread = entry.get(key + "_sd")
        return f"{entry[key]:.4f}" + (f" ± {spread:.4f}" if spread is not None else "")

    def predicted(entry: dict[str, Any], key: str) -> str:
        return "—" if entry[key] is None else f"{entry[key]:.4f}"

    print(f"\n### Threshold against gallery size (random subsets of the enrolled people, {REPEATS} draws each, "
          f"mean ± sd; strangers: the {int((~mated).sum()):,} one-image people)\n")
    print(markdown(
        ["people enrolled", "rank-1", "threshold FPIR 1%", "FNIR there", "threshold FPIR 0.1%", "FNIR there",
         "predicted from 1:1 FAR table (1% / 0.1%)", "FPIR at 1:1 FAR 1%/N",
         f"FPIR at 1:1 threshold {verify_threshold:.3f}", f"FPIR at default {default_threshold:.3f}",
         "FNIR at default", "FPIR of face_recognition d ≤ 0.6"],
        [[f"{e['size']:,}", pct(e["rank1"]), sd(e, "threshold_fpir_0.01"), pct(e["fnir_fpir_0.01"]),
          sd(e, "threshold_fpir_0.001"), pct(e["fnir_fpir_0.001"]),
          f"{predicted(e, 'predicted_threshold_fpir_0.01')} / {predicted(e, 'predicted_threshold_fpir_0.001')}",
          pct(e["fpir_at_rule"]),
          pct(e["fpir_at_1to1"]), pct(e["fpir_at_default"]), pct(e["fnir_at_default"]), pct(e["fpir_fr_rule"])]
         for e in sizes]))

    # -- 3. aggregation, few-shot ---------------------------------------------------------------
    few = split(by_person, has_face, shots=3, min_images=4)
    few_mated = few.truth >= 0
    print(f"\nfew-shot: {len(few.people)} people with ≥ 4 images enrolled from their first 3 "
          f"({sum(map(len, few.enrolled))} faces), {int(few_mated.sum())} mated probes, "
          f"{int((~few_mated).sum())} strangers; enrollment photos without a face replaced: {few.replaced}")
    aggregation = []
    for how, label in (("max", "max (best face)"), ("mean", "mean template (renormalised)"),
                       ("top2", "mean of the two best faces")):
        result, _ = search(faceshot_vectors, has_face, few, how=how)
        entry = {"aggregation": how, "rank1": result.rank1(), "fpir_at_default": result.fpir(default_threshold),
                 "fnir_at_default": result.fnir(default_threshold)} | rule_figures(result, few)
        for fpir in FPIRS:
            t = result.threshold_for(fpir)
            entry[f"threshold_fpir_{fpir:g}"] = t
            entry[f"fnir_fpir_{fpir:g}"] = result.fnir(t)
        entry["label"] = label
        aggregation.append(entry)
    first_only = split(by_person, has_face, shots=1, min_images=4)
    one_shot_few, _ = search(faceshot_vectors, has_face, first_only)
    t = one_shot_few.threshold_for(1e-2)
    aggregation.append({"aggregation": "one-shot", "label": "(same people, first image only)",
                        "rank1": one_shot_few.rank1(), "threshold_fpir_0.01": t, "fnir_fpir_0.01": one_shot_few.fnir(t),
                        "threshold_fpir_0.001": one_shot_few.threshold_for(1e-3),
                        "fnir_fpir_0.001": one_shot_few.fnir(one_shot_few.threshold_for(1e-3)),
                        "fpir_at_default": one_shot_few.fpir(default_threshold),
                        "fnir_at_default": one_shot_few.fnir(default_threshold)}
                       | rule_figures(one_shot_few, first_only))
    report["aggregation"] = aggregation
    print(f"\n### Aggregating a person's faces (few-shot: {len(few.people)} people × 3 faces, "
          f"{int(few_mated.sum())} mated probes, {int((~few_mated).sum())} strangers)\n")
    print(markdown(
        ["aggregation", "rank-1", "threshold FPIR 1%", "FNIR@FPIR 1%", "threshold FPIR 0.1%", "FNIR@FPIR 0.1%",
         f"FPIR / FNIR at {default_threshold:.4f}", "FPIR / FNIR, rule on people", "FPIR / FNIR, rule on faces"],
        [[e["label"], pct(e["rank1"]), f"{e['threshold_fpir_0.01']:.4f}", pct(e["fnir_fpir_0.01"]),
          f"{e['threshold_fpir_0.001']:.4f}", pct(e["fnir_fpir_0.001"]),
          f"{pct(e['fpir_at_default'])} / {pct(e['fnir_at_default'])}",
          f"{pct(e['rule_people']['fpir'])} / {pct(e['rule_people']['fnir'])}",
          f"{pct(e['rule_faces']['fpir'])} / {pct(e['rule_faces']['fnir'])}"] for e in aggregation]))

    # How the threshold for FPIR 1% moves with the number of faces per person, the same people and probes.
    shots_rows = []
    for shots in SHOTS:
        s = split(by_person, has_face, shots=shots, min_images=max(SHOTS) + 2, first_probe=max(SHOTS))
        entry = {"faces_per_person": shots, "people": len(s.people), "mated_probes": int((s.truth >= 0).sum())}
        for how in ("max", "mean"):
            result, _ = search(faceshot_vectors, has_face, s, how=how)
            t = result.threshold_for(1e-2)
            entry[how] = {"threshold_fpir_0.01": t, "fnir_fpir_0.01": result.fnir(t), "rank1": result.rank1(),
                          "fpir_at_default": result.fpir(default_threshold)} | rule_figures(result, s)
        shots_rows.append(entry)
    report["faces_per_person"] = shots_rows
    print(f"\n### Faces per person (the {shots_rows[0]['people']} people with ≥ {max(SHOTS) + 2} images; probes: "
          f"their images after the {max(SHOTS)}th, {shots_rows[0]['mated_probes']:,}; strangers as above)\n")
    print(markdown(
        ["faces enrolled per person", "max: threshold FPIR 1%", "max: FNIR there", "max: FPIR, rule on faces",
         "mean: threshold FPIR 1%", "mean: FNIR there", "mean: FPIR, rule on people", "mean: FPIR, rule on faces"],
        [[e["faces_per_person"], f"{e['max']['threshold_fpir_0.01']:.4f}", pct(e["max"]["fnir_fpir_0.01"]),
          pct(e["max"]["rule_faces"]["fpir"]), f"{e['mean']['threshold_fpir_0.01']:.4f}",
          pct(e["mean"]["fnir_fpir_0.01"]), pct(e["mean"]["rule_people"]["fpir"]),
          pct(e["mean"]["rule_faces"]["fpir"])] for e in shots_rows]))
    print("\n(rule on people / faces: the threshold whose 1:1 FAR is 1% divided by the people / faces searched)")

    # -- 4. the product gives the same answers ------------------------------------------------
    if not args.skip_gallery_check:
        report["gallery_check"] = []
        for s, how in ((one, "max"), (few, "mean")):
            check = check_gallery(images, paths, faceshot_vectors, arrays["faces"], s, rng, how, args.detector)
            report["gallery_check"].append(check)
            print(f"\nfaceshot.gallery.Gallery, aggregation {how!r} ({check['people']} people, {check['faces']} "
                  f"faces enrolled with force=True; {check['probes']} single-face probes, half of them strangers): "
                  f"same top-1 as the matrix computation for {check['same_top1']}/{check['probes']}; "
                  f"largest score difference {check['max_score_difference']:.1e} ({check['seconds']} s)")

    # -- the default identification operating point -------------------------------------------
    worst_prediction = max(
        abs(e[f"predicted_threshold_fpir_{fpir:g}"] - e[f"threshold_fpir_{fpir:g}"])
        for e in sizes for fpir in FPIRS if e[f"predicted_threshold_fpir_{fpir:g}"] is not None
    )
    identify = {
        "embedder": "dlib-resnet",
        "fpir": args.fpir,
        "threshold": round(default_threshold, 6),
        "gallery_size": len(one.people),
        "reference": (
            f"python benchmarks/lfw_open_set.py --write-calibration: LFW one-shot open set, {args.detector} detector, "
            f"{len(one.people)} people "
            f"enrolled from their first image, threshold that lets {args.fpir:g} of the "
            f"{int((~mated).sum()):,} one-image people (strangers) match someone; FNIR there "
            f"{fs.fnir(default_threshold):.4f}, rank-1 {fs.rank1():.4f}. by_gallery_size: mean over "
            f"{REPEATS} random subsets of the enrolled people"
        ),
        "figures": {"rank1": round(fs.rank1(), 4), "fnir": round(fs.fnir(default_threshold), 4),
                    "fpir_measured": round(fs.fpir(default_threshold), 5)},
        "scaling": (
            "with one face per person, the threshold for FPIR f in a gallery of N people is the 1:1 threshold "
            f"at FAR 1 - (1 - f)^(1/N), about f/N (far_table of dlib-resnet.json): within {worst_prediction:.4f} "
            f"of the measured one for N = {', '.join(str(n) for n in GALLERY_SIZES)} and {len(one.people)} where "
            "the table reaches. With max "
            "aggregation count faces rather than people; mean templates of k faces need a higher threshold "
            "than one face (see the faces-per-person table)"
        ),
        "by_gallery_size": [
            {"size": e["size"], "threshold_fpir_1e-2": round(e["threshold_fpir_0.01"], 6),
             "threshold_fpir_1e-3": round(e["threshold_fpir_0.001"], 6)}
            for e in sizes
        ],
    }
    report["default_identification"] = identify
    print(f"\ndefault identification threshold: {default_threshold:.4f} "
          f"(FPIR {args.fpir:g} at {len(one.people)} people)")
    if args.write_calibration:
        CALIBRATION_OUT.write_text(json.dumps(identify, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {CALIBRATION_OUT.relative_to(ROOT)}")
    report["seconds"] = round(time.perf_counter() - started)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
