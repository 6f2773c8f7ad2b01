"""What each detector does to accuracy: LFW View 2 (10 folds) and LFW one-shot open set, dlib's embedder.

    python benchmarks/lfw_detectors.py [--detectors "hog>cnn-onnx;hog;cnn-onnx"] [--models .cache/models]
        [--yunet ../shared/models/face_detection_yunet_2026may.onnx] [--workers N] [--json OUT]

Every detector text embeds all 13,233 LFW images once (the central face, dlib's ResNet run by its
ONNX conversion, the chip and its mirror image), cached in ``.cache/lfw_embeddings-DETECTOR.npz``
exactly as ``benchmarks/lfw_open_set.py`` caches them, so either benchmark reuses the other's
vectors. From those vectors, with faceshot's own evaluation code:

- LFW View 2 (``pairs.txt``, 10 folds of 300 mated + 300 non-mated pairs): the threshold chosen on 9
  folds, accuracy on the 10th (:func:`faceshot.evaluate.verification.kfold`), what ``faceshot eval
  verify --pairs pairs.txt --detector D`` computes. A pair with an image without a face counts as
  rejected (different).
- One-shot open set (``lfw_open_set.py``'s protocol): 1,680 people enrolled from one image, their
  7,484 other images as mated probes, the 4,069 one-image people as strangers; rank-1, and FNIR at
  the threshold that lets 1% of the strangers match someone (FPIR 1%).

``--models`` adds ``mtcnn`` (its graphs from ``faceshot models fetch mtcnn --cache-dir``) and
``--yunet`` adds ``yunet`` with that file, each with its default options.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from faceshot.evaluate.lfw import read_pairs
from faceshot.evaluate.verification import UNSCORED, kfold, roc
from lfw_open_set import describe_all, search, split, unit

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DETECTORS = "hog>cnn-onnx;hog;cnn-onnx"


def view2(lfw: Path, index: dict[str, int], vectors: np.ndarray, has_face: np.ndarray) -> dict[str, float]:
    """LFW View 2's 10-fold figures from per-image vectors (rows of ``vectors``, by ``index``)."""
    pairs = read_pairs(lfw / "pairs.txt", lfw / "images")
    images = lfw / "images"

    def row(path: Path) -> int:
        return index[str(path.relative_to(images))]

    a = np.array([row(p.a) for p in pairs])
    b = np.array([row(p.b) for p in pairs])
    scores = np.where(has_face[a] & has_face[b], (vectors[a] * vectors[b]).sum(1), UNSCORED)
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    accuracy = np.array([f.accuracy for f in kfold(scores, same, folds)])
    curve = roc(scores, same)
    used = np.unique(np.concatenate([a, b]))
    return {"accuracy_mean": float(accuracy.mean()), "accuracy_std": float(accuracy.std()), "roc_auc": curve.auc,
            "eer": curve.eer, "tar_at_far_1e-3": curve.tar_at(1e-3), "unscored_pairs": int((scores == UNSCORED).sum()),
            "images": len(used), "images_without_face": int((~has_face[used]).sum())}


def open_set(paths: list[str], vectors: np.ndarray, has_face: np.ndarray) -> dict[str, float]:
    """One-shot open-set rank-1 and FNIR at FPIR 1% (``lfw_open_set.py``'s protocol)."""
    by_person: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        by_person.setdefault(p.split("/")[0], []).append(i)
    one = split(by_person, has_face, shots=1, min_images=2)
    result, _ = search(vectors, has_face, one)
    threshold = result.threshold_for(1e-2)
    return {"enrolled": len(one.people), "mated_probes": int((one.truth >= 0).sum()),
            "nonmated_probes": int((one.truth < 0).sum()), "rank1": result.rank1(),
            "threshold_fpir_1e-2": threshold, "fnir_fpir_1e-2": result.fnir(threshold)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "datasets" / "lfw")
    parser.add_argument("--detectors", default=DEFAULT_DETECTORS, help="detector texts separated by ';'")
    parser.add_argument("--models", type=Path, help="MTCNN's graphs (faceshot models fetch mtcnn --cache-dir): adds mtcnn")
    parser.add_argument("--yunet", type=Path, help="YuNet's ONNX file: adds yunet")
    parser.add_argument("--workers", type=int, default=None, help="embedding processes (default one per core)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    texts = [t for t in args.detectors.split(";") if t]
    if args.models:
        texts.append(f"mtcnn:cache_dir={args.models.resolve()}")
    if args.yunet:
        texts.append(f"yunet:model={args.yunet.resolve()}")
    images = args.lfw / "images"
    paths = sorted(f"{d.name}/{f.name}" for d in images.iterdir() if d.is_dir() for f in d.glob("*.jpg"))
    index = {p: i for i, p in enumerate(paths)}
    rows = []
    for text in texts:
        started = time.perf_counter()
        arrays, seconds = describe_all(images, paths, text, workers=args.workers)
        has_face = arrays["faces"] > 0
        raw = np.nan_to_num(arrays["raw"]).astype(np.float64)
        mirror = np.nan_to_num(arrays["mirror"]).astype(np.float64)
        with np.errstate(invalid="ignore"):
            vectors = np.nan_to_num(unit(unit(raw) + unit(mirror)))  # what dlib-resnet computes
        entry = {"detector": text, "lfw_images": len(paths), "lfw_without_face": int((~has_face).sum()),
                 "embedding_seconds": None if seconds is None else round(seconds),
                 "workers": args.workers or os.cpu_count(), "load_after": round(os.getloadavg()[0], 1),
                 "view2": view2(args.lfw, index, vectors, has_face), "open_set": open_set(paths, vectors, has_face)}
        entry["seconds"] = round(time.perf_counter() - started)
        rows.append(entry)
        v, o = entry["view2"], entry["open_set"]
        print(f"{text}: View 2 {100 * v['accuracy_mean']:.2f}% ± {100 * v['accuracy_std']:.2f} "
              f"(AUC {v['roc_auc']:.4f}, {v['unscored_pairs']} pairs unscored, {v['images_without_face']} of "
              f"{v['images']} images without a face); open set rank-1 {100 * o['rank1']:.2f}%, FNIR "
              f"{100 * o['fnir_fpir_1e-2']:.2f}% at FPIR 1%; LFW images without a face {entry['lfw_without_face']}; "
              f"embedding {entry['embedding_seconds']} s", flush=True)

    print("\n| detector | LFW View 2 (10 folds) | ROC AUC | TAR @ FAR 1e-3 | View 2 pairs unscored | LFW images "
          "without a face (of 13,233) | one-shot rank-1 | FNIR @ FPIR 1% | embedding wall |")
    print("|---|---|---|---|---|---|---|---|---|")
    for e in rows:
        v, o = e["view2"], e["open_set"]
        wall = "cached" if e["embedding_seconds"] is None else f"{e['embedding_seconds'] / 60:.1f} min ({e['workers']} process{'es' if e['workers'] > 1 else ''})"
        print(f"| `{e['detector']}` | {100 * v['accuracy_mean']:.2f}% ± {100 * v['accuracy_std']:.2f} | {v['roc_auc']:.4f} | "
              f"{100 * v['tar_at_far_1e-3']:.2f}% | {v['unscored_pairs']} | {e['lfw_without_face']} | "
              f"{100 * o['rank1']:.2f}% | {100 * o['fnir_fpir_1e-2']:.2f}% | {wall} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
