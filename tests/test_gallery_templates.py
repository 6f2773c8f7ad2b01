"""``mean`` aggregation as one search over per-person templates that follow the change log.

A person's template is the unit-length mean of their face vectors. The reference here is the
exact computation, person by person, from the vectors the records hold: every decision, score and
candidate list of the templates' search must equal it, on real embeddings (AT&T faces, several
per person) and across writes, deletes, merges and another process's writes.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceshot.evaluate.synthetic import lfw_dlib_model
from faceshot.gallery import Gallery, index as index_module
from faceshot.gallery.ranking import template
from faceshot.gallery.store import NewFace, PersonRecord, Store
from faceshot.match import decide

ENROLLED = 10  # AT&T people s1..s10 enrolled from 3 photos each; s11, s12 are strangers


@pytest.fixture(scope="module")
def att(datasets, engine) -> dict[str, np.ndarray]:
    """Real ``dlib-resnet`` vectors of 8 photos each of 12 AT&T people (``(8, 128)`` per person)."""
    faces: dict[str, np.ndarray] = {}
    for number in range(1, 13):
        photos = sorted((datasets / "att_faces" / f"s{number}").glob("*.pgm"))[:8]
        faces[f"s{number}"] = np.stack([engine.embed(photo)[0] for photo in photos])
    return faces


def exact_mean(gallery: Gallery, probes: np.ndarray, top_k: int = 5, group: str | None = None):
    """Per probe: every person's template computed from the records, scored one by one, best first."""
    members = None if group is None else {m for g in gallery.groups() if g.name == group for m in g.people}
    names = [p.name for p in gallery.people() if members is None or p.name in members]
    vectors = gallery.store.embeddings(names)
    templates = np.stack([template(vectors[name]) for name in names])
    out = []
    for probe in probes:
        scores = templates @ probe
        order = np.argsort(-scores, kind="stable")[:top_k]
        out.append([(names[i], float(scores[i])) for i in order])
    return out


def assert_same(gallery: Gallery, probes: np.ndarray, group: str | None = None) -> int:
    """The gallery's mean decisions, scores and candidates equal the exact ones; returns how many were named."""
    found = gallery.identify_embeddings(probes, aggregation="mean", group=group)
    want = exact_mean(gallery, probes, group=group)
    named = 0
    for got, ranking in zip(found, want):
        assert [name for name, _ in got.candidates] == [name for name, _ in ranking]
        assert [score for _, score in got.candidates] == pytest.approx([score for _, score in ranking], abs=1e-5)
        identity, score = decide(tuple(ranking), got.threshold)
        assert got.identity == identity and got.score == pytest.approx(score, abs=1e-5)
        named += got.identity is not None
    return named


@pytest.fixture
def enrolled(att, tmp_path):
    path = tmp_path / "att.db"
    with Gallery(path) as gallery:
        for number in range(1, ENROLLED + 1):
            name = f"s{number}"
            gallery.add_embeddings(name, att[name][:3], groups=["first"] if number <= 4 else [])
    return path


def probes_of(att) -> np.ndarray:
    mated = [att[f"s{n}"][3:] for n in range(1, ENROLLED + 1)]
    strangers = [att["s11"], att["s12"]]
    return np.concatenate(mated + strangers)


def test_mean_is_one_search_whose_decisions_equal_the_exact_per_person_computation(att, enrolled):
    probes = probes_of(att)
    with Gallery(enrolled) as gallery:
        named = assert_same(gallery, probes)
        assert named >= 40 and named < len(probes)  # mated probes named, strangers left unknown
        templates = gallery.store._templates
        assert templates is not None and len(templates) == ENROLLED and templates.stats.builds == 1
        # The old way, a query per candidate among the nearest faces, agrees on this gallery.
        by_candidates = Store.search_people(gallery.store, probes, 5)
        by_templates = gallery.store.search_people(probes, 5)
        assert [row[0][0] for row in by_candidates] == [row[0][0] for row in by_templates]
        # Restricted to a group inside the search: its members only, as computed exactly over them.
        assert_same(gallery, probes, group="first")
        members = {f"s{n}" for n in range(1, 5)}
        assert all(name in members for r in gallery.identify_embeddings(probes, group="first") for name, _ in r.candidates)


def test_templates_follow_writes_deletes_merges_and_another_process(att, enrolled):
    probes = probes_of(att)
    with Gallery(enrolled) as gallery, Gallery(enrolled) as other:
        assert_same(gallery, probes)
        templates = gallery.store._templates
        gallery.add_embeddings("s1", att["s1"][3:4])  # a fourth face: s1's template moves
        gallery.remove_face(gallery.person("s2").faces[0].id)
        assert_same(gallery, probes)
        gallery.merge("s3", "s4")  # s3's faces now count for s4
        gallery.delete("s5")
        gallery.rename("s6", "renamed")
        found = gallery.identify_embeddings(probes, aggregation="mean")
        assert all(name not in ("s3", "s5", "s6") for r in found for name, _ in r.candidates)
        assert_same(gallery, probes)
        # Another process's writes are seen at the next search, through the log.
        other.add_embeddings("s12", att["s12"][:3])
        other.delete("s7")
        named = assert_same(gallery, probes)
        assert named >= 35
        assert "s12" in {r.identity for r in gallery.identify_embeddings(att["s12"][3:], aggregation="mean")}
        # Caught up from the log, person by person, never built again.
        assert templates is gallery.store._templates and templates.stats.builds == 1
        assert templates.stats.refreshed >= 7


def test_one_face_per_person_keeps_no_templates(att, tmp_path):
    with Gallery(tmp_path / "one.db") as gallery:
        for number in range(1, ENROLLED + 1):
            gallery.add_embeddings(f"s{number}", att[f"s{number}"][:1])
        assert_same(gallery, probes_of(att))
        assert gallery.store._templates is None  # a template is the one face: the faces' index answered


@pytest.mark.parametrize("kind", ("hnsw", "ivfsq"))
def test_approximate_template_index_decides_as_exact_search(kind, tmp_path, monkeypatch):
    monkeypatch.setattr(index_module, "TRAIN_PER_LIST", 10)  # train IVF on 1,500 templates
    model = lfw_dlib_model()
    people, gallery_set = model.gallery(1500, faces_per_person=2, seed=31)
    probes = np.concatenate([model.mated(people, 200, seed=32).vectors, model.strangers(200, seed=33)])
    records: dict[int, list[NewFace]] = {}
    for vector, who in zip(gallery_set.vectors, gallery_set.person):
        records.setdefault(int(who), []).append(NewFace(vector))
    with Gallery(tmp_path / "g.db") as gallery:
        gallery.store.set_index(kind)
        gallery.add_embeddings_batch(PersonRecord(f"p{who}", {}, (), None, tuple(faces)) for who, faces in records.items())
        found = gallery.identify_embeddings(probes, aggregation="mean")
        assert gallery.store._templates.kind == kind
        want = exact_mean(gallery, probes)
        differ = 0
        named = 0
        for got, ranking in zip(found, want):
            identity, score = decide(tuple(ranking), got.threshold)
            named += identity is not None
            if got.identity != identity:
                differ += 1
                assert got.identity is None  # a missed template leaves the probe unknown, never misnamed
            elif identity is not None:
                assert got.score == pytest.approx(score, abs=1e-5)  # compressed codes are rescored exactly
        assert named > 50 and differ <= len(probes) // 200
        # Deleted people are never returned, whether the index removes them or keeps tombstones.
        gone = {f"p{who}" for who in range(0, 1500, 10)}
        for name in gone:
            gallery.delete(name)
        own = gallery_set.vectors[::2][::10]  # an enrolled face of each deleted person
        for result in gallery.identify_embeddings(own, aggregation="mean"):
            assert not gone & {name for name, _ in result.candidates}
