"""Cluster real photo collections and write contact sheets: the issue's second set of figures.

    python benchmarks/scenes_cluster.py [--datasets ../shared/datasets] [--out out/]

1. ``face_recognition_examples/`` (15 photos of 6 people, one folder each) together with
   ``scenes/`` (21 group photos, a collage): one-shot clustering, every cluster printed with its
   photos; for faces from the labelled folders, the pairwise and BCubed figures against the folder
   names. Contact sheet: ``out/scenes_clusters.html``.
2. The same photos added incrementally: the labelled folders first into a new gallery file, then
   ``scenes/`` in a second run; how many new faces joined the first run's clusters, and whether the
   final grouping agrees with the one-shot run. Timed; the second run only embeds the new photos.
3. ``scenes/dlib_bald_guys.jpg`` alone, the collage dlib's own face-clustering example uses:
   clusters found. Contact sheet: ``out/bald_guys.html``.

Default settings throughout (HOG detector, chinese-whispers, the default threshold, min size 2).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from faceshot.cluster import Clustering, Collection, contact_sheet, score_clustering

ROOT = Path(__file__).resolve().parents[1]


def labels_of(clustering: Clustering, faces: list[str]) -> dict[str, int]:
    """Face key (photo, box) → cluster id (unclustered faces get -1)."""
    found = {}
    for cluster in clustering.clusters:
        for face in cluster.faces:
            found[f"{face.source}:{face.face.box}"] = cluster.id
    for face in clustering.unclustered:
        found[f"{face.source}:{face.face.box}"] = -1
    return {key: found[key] for key in faces}


def show(clustering: Clustering, root: Path) -> None:
    for cluster in clustering.clusters:
        photos = [str(Path(face.source).relative_to(root)) for face in cluster.faces]
        print(f"  cluster {cluster.id:3d} ({cluster.size:2d} faces): {', '.join(sorted(photos))}")
    print(f"  unclustered: {len(clustering.unclustered)} faces")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=ROOT / "out")
    args = parser.parse_args()
    root = args.datasets.resolve()
    examples, scenes = root / "face_recognition_examples", root / "scenes"

    print("== 1. face_recognition_examples + scenes, one shot ==")
    start = time.perf_counter()
    with Collection() as collection:
        once = collection.add([examples, scenes])
        seconds = time.perf_counter() - start
        sheet = contact_sheet(args.out / "scenes_clusters.html", once, title="faceshot clusters: examples + scenes")
    print(f"{once.photos} photos, {once.faces} faces, {len(once.no_face)} photos without a face, "
          f"{len(once.failed)} failed; {seconds:.1f} s")
    show(once, root)
    labelled = [face for face in (*[f for c in once.clusters for f in c.faces], *once.unclustered)
                if Path(face.source).is_relative_to(examples)]
    truth = [Path(face.source).parent.name for face in labelled]
    ids = {name: k for k, name in enumerate(sorted(set(truth)))}
    predicted = [face.cluster if face.cluster is not None else -1 for face in labelled]
    scores = score_clustering(np.array([ids[t] for t in truth]), np.array(predicted))
    print(f"labelled faces ({len(labelled)} in {len(ids)} folders): " + ", ".join(
        f"{k} {v}" for k, v in scores.to_dict().items()))
    print(f"contact sheet: {sheet}")

    print("\n== 2. the same photos in two runs: the labelled folders, then scenes/ ==")
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "photos.db"
        start = time.perf_counter()
        with Collection(db) as collection:
            first = collection.add([examples])
        middle = time.perf_counter()
        with Collection(db) as collection:
            second = collection.add([examples, scenes])
        end = time.perf_counter()
    print(f"run 1: {first.added} faces, {len(first.clusters)} clusters, {middle - start:.1f} s")
    print(f"run 2: {second.skipped} photos skipped as seen, {second.added} new faces, {second.joined} joined "
          f"run 1's clusters; {len(second.clusters)} clusters in all, {end - middle:.1f} s")
    keys = [f"{f.source}:{f.face.box}" for c in once.clusters for f in c.faces] + \
           [f"{f.source}:{f.face.box}" for f in once.unclustered]
    a, b = labels_of(once, keys), labels_of(second, keys)
    agreement = score_clustering(np.array([a[k] for k in keys]), np.array([b[k] for k in keys]))
    print(f"incremental vs one-shot grouping: pairwise F {agreement.pairwise_f:.3f}, BCubed F {agreement.bcubed_f:.3f}")

    print("\n== 3. scenes/dlib_bald_guys.jpg ==")
    start = time.perf_counter()
    with Collection() as collection:
        bald = collection.add([scenes / "dlib_bald_guys.jpg"])
        sheet = contact_sheet(args.out / "bald_guys.html", bald, title="faceshot clusters: dlib_bald_guys.jpg")
    print(f"{bald.faces} faces, {len(bald.clusters)} clusters (sizes "
          f"{', '.join(str(c.size) for c in bald.clusters)}), {len(bald.unclustered)} unclustered; "
          f"{time.perf_counter() - start:.1f} s")
    print(f"contact sheet: {sheet}")


if __name__ == "__main__":
    main()
