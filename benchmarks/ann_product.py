"""The same through the product: Gallery.add_embeddings_batch of many vectors, then identify_embeddings.

    nice -n 10 python benchmarks/ann_product.py --faces 1000000 [--kind 'ivfpq;ivfsq'] [--probes 1000] [--keep DIR]

A synthetic LFW-like gallery (one face per person, faceshot.evaluate.synthetic) is loaded with
``Gallery.add_embeddings_batch`` in batches of 100,000 people (one transaction each); then the
index is set (``gallery index --kind``) and every figure below is taken through
``Gallery.identify_embeddings`` at the product's default operating point, once with ``--kind``
and once with exact search (``flat``) in the same run:

- load time and database size; the first search's time (it builds the index from the records);
- one probe per call, p50/p99 (the product runs single-probe searches on one thread);
- decisions: share of the mated probes flat names correctly that ``--kind`` names too, and
  agreement over all probes and over those either names;
- group-restricted search (groups of about 100, 10,000 and 100,000 faces): p50/p99 after the
  group's first search, and agreement with flat, whose groups are scored by a product with every
  member's vector (the other kinds scan a group above ``CODED_SCAN_ABOVE`` faces in 8-bit codes first).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from faceshot.evaluate.synthetic import lfw_dlib_model
from faceshot.gallery import Gallery, index as index_module
from faceshot.gallery.index import CODED_SCAN_ABOVE
from faceshot.gallery.store import NewFace, PersonRecord

GROUPS = {"g100": 10_000, "g10k": 100, "g100k": 10}  # person i joins group g when i % step == 0


def groups_of(i: int, faces: int) -> tuple[str, ...]:
    scale = faces / 1_000_000
    return tuple(name for name, step in GROUPS.items() if i % max(1, int(step * scale)) == 0)


def measure(gallery: Gallery, probes: np.ndarray, group: str | None = None) -> tuple[list[str | None], list[float]]:
    names, latencies = [], []
    for probe in probes:
        t = time.perf_counter()
        [result] = gallery.identify_embeddings(probe, group=group)
        latencies.append(time.perf_counter() - t)
        names.append(result.identity)
    return names, latencies


def agreement(got: list[str | None], want: list[str | None], truth: list[str | None]) -> dict[str, float]:
    got_a, want_a, truth_a = (np.array(x, dtype=object) for x in (got, want, truth))
    right = (want_a == truth_a) & np.array([t is not None for t in truth])
    either = np.array([g is not None or w is not None for g, w in zip(got, want)])
    return {
        "mated_kept": round(float((got_a[right] == truth_a[right]).mean()), 5) if right.any() else float("nan"),
        "agreement": round(float((got_a == want_a).mean()), 5),
        "agreement_named": round(float((got_a[either] == want_a[either]).mean()), 5) if either.any() else float("nan"),
        "named_by_exact": int(sum(w is not None for w in want)),
    }


def ms(values: list[float], q: float) -> float:
    return round(1000 * float(np.percentile(values, q)), 3)


def main() -> None:
    # Gallery.operating_point warns, at every identification, that FPIR 1% over this many faces lies
    # beyond the calibration; the warning is known and its cost (a stderr write) is not the index's.
    logging.getLogger("faceshot.gallery.gallery").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--kind", default="ivfpq", help="index kinds to compare with flat, separated by ';'")
    parser.add_argument("--probes", type=int, default=1000, help="mated probes, and as many non-mated")
    parser.add_argument("--group-probes", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="the gallery in --keep is already loaded: measure only")
    parser.add_argument("--keep", type=Path, help="folder for the gallery (kept); default a temporary one")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp())
    path = folder / "ann_product.db"
    model = lfw_dlib_model()
    people, synthetic = model.gallery(args.faces, seed=0)
    mated = model.mated(people, args.probes, seed=1)
    probes = np.concatenate([mated.vectors, model.strangers(args.probes, seed=2)])
    truth = [f"p{i}" for i in mated.person] + [None] * args.probes
    report: dict = {"faces": args.faces, "kind": args.kind}
    # Per group: mated probes of its members, and as many strangers.
    group_probes = {}
    half = args.group_probes // 2
    for n, group in enumerate(GROUPS):
        members = np.array([i for i in range(args.faces) if group in groups_of(i, args.faces)])
        chosen = np.random.default_rng(n).choice(members, half)
        vectors = np.concatenate([model.photos(people, chosen, seed=100 + n), model.strangers(half, seed=200 + n)])
        group_probes[group] = (vectors, [f"p{i}" for i in chosen] + [None] * half)
    with Gallery(path) as gallery:  # the load
        started = time.perf_counter()
        for start in range(0, args.faces if not args.reuse else 0, 100_000):
            gallery.add_embeddings_batch(
                PersonRecord(f"p{i}", {}, groups_of(i, args.faces), None, (NewFace(synthetic.vectors[i]),))
                for i in range(start, min(args.faces, start + 100_000))
            )
        report["load_s"] = round(time.perf_counter() - started, 1)
        report["db_mb"] = round(sum(p.stat().st_size for p in folder.glob("ann_product.db*")) / 2**20, 1)
    print(json.dumps(report), flush=True)
    results = {}
    kinds = [kind for kind in args.kind.split(";") if kind]
    for kind in (*kinds, "flat"):
        # The reference, flat, scores groups by a product with every member's vector (no 8-bit scan
        # first), so every decision it is compared with is exact search's. Each kind opens the
        # gallery afresh: no index or group vectors carried over from the kind before.
        index_module.CODED_SCAN_ABOVE = sys.maxsize if kind == "flat" else CODED_SCAN_ABOVE
        with Gallery(path) as gallery:
            gallery.store.set_index(kind)
            started = time.perf_counter()
            gallery.identify_embeddings(probes[0])
            first = time.perf_counter() - started
            names, latencies = measure(gallery, probes)
            results[kind] = names
            row = {"kind": kind, "first_search_s": round(first, 1), "p50_ms": ms(latencies, 50), "p99_ms": ms(latencies, 99)}
            for group in GROUPS:
                size = gallery.store.scope(group)[0]
                measure(gallery, group_probes[group][0][:1], group)  # reads the group's vectors once
                group_names, group_latencies = measure(gallery, group_probes[group][0], group)
                results[(kind, group)] = group_names
                row[group] = {"faces": size, "p50_ms": ms(group_latencies, 50), "p99_ms": ms(group_latencies, 99)}
            print(json.dumps(row), flush=True)
            report[kind] = row
    for kind in kinds:
        report[kind]["decisions"] = agreement(results[kind], results["flat"], truth)
        for group in GROUPS:
            report[kind]["decisions_" + group] = agreement(
                results[(kind, group)], results[("flat", group)], group_probes[group][1]
            )
        report[kind]["speedup_p50"] = round(report["flat"]["p50_ms"] / report[kind]["p50_ms"], 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
