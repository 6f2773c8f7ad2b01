"""Measure the per-track operating point of ``faceshot watch``: FAR tables for k-frame templates.

    nice -n 10 python benchmarks/calibrate_watch_tracks.py [--lfw ../shared/datasets/lfw] [--workers 2]

A video track is decided on a *template*: the mean (renormalised) of its k best face embeddings,
compared with one-shot enrolled faces. A mean of k faces lies closer to the person's centre than one
photo does, so its scores against strangers are distributed differently from single-photo scores,
and the single-photo FAR table (``faceshot/embed/calibration/dlib-resnet.json``) does not apply. This
script measures one FAR table per k = 1..6 on LFW (deep-funneled):

- **templates**: every LFW person with at least 6 usable photos (HOG detector, the most central
  face, ``dlib-resnet-onnx``; LFW's errata and the name variants of ``calibrate_lfw_far.py`` applied);
  for each k, 6 templates per person, the means of k consecutive photos of their first 6 (rotating);
- **enrolled faces** (the one-shot gallery): every single photo of those people, and the first
  photo of up to 1,500 people with exactly one photo in LFW;
- **impostor pairs**: a template against every enrolled face of another identity; the table runs
  from FAR 0.5 down to the rate where at least 100 impostor pairs still reach the threshold (as in
  ``calibrate_lfw_far.py``);
- **genuine pairs** (figures only): a template of k photos of a person (k <= 5) against one of their
  photos outside it, to report the share named at the thresholds chosen.

Writes ``faceshot/video/track_far.json`` (read by :mod:`faceshot.video.calibration`) and prints the
tables' key rows. Vectors are cached in ``.cache/watch_track_vectors.npz``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate_lfw_far import MISLABELLED, far_rows, identity_of  # noqa: E402

from faceshot.bulk import represent_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "watch_track_vectors.npz"
OUT = ROOT / "faceshot" / "video" / "track_far.json"
BINS_PER_UNIT = 1_000_000
K_MAX = 6
SINGLES = 1500


def embed(lfw: Path, names: list[str], workers: int) -> dict[str, np.ndarray]:
    vectors: dict[str, np.ndarray] = {}
    if CACHE.is_file():
        with np.load(CACHE) as data:
            vectors = dict(zip((str(n) for n in data["paths"]), data["vectors"]))
    missing = [n for n in names if n not in vectors]
    started = time.perf_counter()
    for start in range(0, len(missing), 400):
        part = missing[start:start + 400]
        results = represent_files([lfw / "images" / n for n in part], detector="hog", embedder="dlib-resnet-onnx",
                                  one_face="central", workers=workers)
        for name, result in zip(part, results):
            if result.ok:
                box = result.faces[0].face.box
                if math.hypot((box.left + box.right) / 2 - 125, (box.top + box.bottom) / 2 - 125) <= 50:
                    vectors[name] = result.faces[0].embedding
        CACHE.parent.mkdir(exist_ok=True)
        keys = sorted(vectors)
        np.savez(CACHE, paths=np.array(keys), vectors=np.stack([vectors[k] for k in keys]))
        print(f"  embedded {start + len(part)} of {len(missing)} ({time.perf_counter() - started:.0f} s)", flush=True)
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=ROOT.parent / "shared" / "datasets" / "lfw")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    images = args.lfw / "images"
    folders = sorted(p for p in images.iterdir() if p.is_dir())
    photos = {f.name: sorted(str(p.relative_to(images)) for p in f.glob("*.jpg") if p.stem not in MISLABELLED)
              for f in folders}
    many = [p for p, files in photos.items() if len(files) >= K_MAX]
    singles = [p for p, files in photos.items() if len(files) == 1][:SINGLES]
    wanted = [n for p in many for n in photos[p][:K_MAX + 2]] + [photos[p][0] for p in singles]
    vectors = embed(args.lfw, wanted, args.workers)

    people = [p for p in many if sum(n in vectors for n in photos[p][:K_MAX + 2]) >= K_MAX]
    own = {p: [vectors[n] for n in photos[p][:K_MAX + 2] if n in vectors] for p in people}
    enrolled, enrolled_id = [], []
    for p in people:
        enrolled += own[p]
        enrolled_id += [identity_of(p)] * len(own[p])
    for p in singles:
        if photos[p][0] in vectors:
            enrolled.append(vectors[photos[p][0]])
            enrolled_id.append(identity_of(p))
    gallery = np.stack(enrolled).astype(np.float32)
    gallery_id = np.array(enrolled_id)
    print(f"{len(people)} people with >= {K_MAX} photos make the templates; {len(gallery)} enrolled faces "
          f"({len(gallery_id) - sum(len(own[p]) for p in people)} of people with one photo)")

    tables: dict[str, list[list[float]]] = {}
    figures: dict[str, dict[str, float]] = {}
    for k in range(1, K_MAX + 1):
        counts = np.zeros(2 * BINS_PER_UNIT + 1, dtype=np.int64)
        pairs = 0
        genuine: list[float] = []
        for p in people:
            faces = np.stack(own[p][:K_MAX])
            rotations = range(K_MAX) if k < K_MAX else range(1)
            templates = []
            for r in rotations:
                chosen = [(r + i) % K_MAX for i in range(k)]
                mean = faces[chosen].mean(axis=0)
                templates.append(mean / np.linalg.norm(mean))
                if len(own[p]) > K_MAX or k < K_MAX:
                    outside = [i for i in range(len(own[p])) if i not in chosen and i < len(own[p])]
                    genuine.append(float(own[p][outside[0]] @ templates[-1]))
            scores = np.stack(templates) @ gallery.T
            block = scores[:, gallery_id != identity_of(p)].ravel().astype(np.float64)
            pairs += block.size
            bins = np.clip(np.floor((block + 1.0) * BINS_PER_UNIT), 0, 2 * BINS_PER_UNIT).astype(np.int64)
            counts += np.bincount(bins, minlength=len(counts))
        table, beyond = far_rows(counts, pairs)
        tables[str(k)] = [list(row) for row in table]
        g = np.array(genuine)
        figures[str(k)] = {"impostor_pairs": pairs, "genuine_pairs": len(g), "impostors_beyond_last_row": beyond,
                           "genuine_median": round(float(np.median(g)), 4)}
        print(f"k={k}: {pairs:,} impostor pairs; FAR rows {table[0]} .. {table[-1]}; "
              f"genuine median {np.median(g):.4f} over {len(g)} pairs")
        for far in (1e-2, 1e-3, 1e-4):
            row = min(table, key=lambda r: abs(math.log(r[1]) - math.log(far)))
            print(f"    FAR ~{far:g}: threshold {row[0]:.4f} (FAR {row[1]:.3g}); genuine named {np.mean(g >= row[0]):.3f}")
            figures[str(k)][f"genuine_named_at_far_{far:g}"] = round(float(np.mean(g >= row[0])), 4)
    OUT.write_text(json.dumps({
        "embedder": "dlib-resnet",
        "reference": (
            f"LFW deep-funneled, HOG + dlib-resnet-onnx, the most central face; templates = means of k photos "
            f"(k = 1..{K_MAX}, 6 rotations per person) of the {len(people)} people with >= {K_MAX} usable photos, "
            f"against {len(gallery)} one-shot enrolled faces of other identities (those people's photos and "
            f"{len(singles)} people with one photo); errata applied; rows down to 100 impostor pairs beyond "
            f"(benchmarks/calibrate_watch_tracks.py)"
        ),
        "tables": tables,
        "figures": figures,
    }, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
