"""Prompt features and task clusters: stable, cheap vectors that separate kinds of requests."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict

import pytest

from apps.routing.engine.clusters import SEED_PROMPTS, TaskClusters
from apps.routing.engine.features import Featurizer, _bucket

_FILL = {
    "lang": ["Python", "Go", "Rust", "TypeScript", "Java"],
    "thing": [
        "a linked list",
        "a JSON parser",
        "an HTTP retry loop",
        "a binary heap",
        "a CSV reader",
    ],
    "person": ["Ana Lopez", "Tom Becker", "Yuki Sato", "Omar Haddad", "Lea Martin"],
    "company": ["Vandelay", "Hooli", "Wayne Ltd", "Cyberdyne", "Soylent"],
    "lang2": ["French", "German", "Italian", "Polish", "Swedish"],
    "n": [str(n) for n in range(3, 60)],
}
_NEWS = [
    "The council approved a new budget for parks after a long debate.",
    "Shares of the retailer fell sharply following weak holiday sales.",
    "Researchers found that sleep improves memory in older adults.",
    "The airline cancelled dozens of flights because of the storm.",
    "A local bakery won the national award for the best sourdough.",
    "Engineers finished the bridge repair two weeks ahead of schedule.",
]
TEMPLATES = {
    "code": [
        "Write a {lang} function implementing {thing} with tests.",
        "Fix the bug in this code:\n```\nfor (i = 0; i <= n; i++) {{ total += xs[i]; }}\n```",
        "Refactor {thing} in {lang}; make it faster and add type annotations.",
        "Why does my {lang} code crash?\n```\nresult = items[len(items)]\n```",
    ],
    "extraction": [
        "Extract the name, company and email from: {person} works at {company}, {person}@x.com.",
        "Return JSON with fields customer and amount: {person} paid {n} dollars to {company}.",
        "Pull every person and organisation out of this note: {person} met {company} staff.",
    ],
    "translation": [
        "Translate into {lang2}:\n{news}",
        "Please translate the following email to {lang2}:\n{news} {news}",
        "How do you say this in {lang2}?\n{news}",
    ],
    "summarization": [
        "Summarize the following in two sentences:\n{news} {news} {news}",
        "Give me a short summary of this article:\n{news} {news}",
        "TL;DR please:\n{news} {news} {news}",
    ],
    "math": [
        "Solve {n}x + {n} = {n} and show every step.",
        "What is the probability of rolling {n} sixes in a row? Explain the reasoning.",
        "A train travels {n} km in {n} hours. What is its average speed? Show your work.",
    ],
}


_SUBJECTS = [
    "The council",
    "A startup",
    "The museum",
    "Local farmers",
    "The hospital",
    "Two universities",
    "The railway",
    "A charity",
    "The mayor",
    "Investors",
]
_VERBS = ["announced", "postponed", "criticised", "funded", "launched", "reviewed", "doubled"]
_OBJECTS = [
    "a housing plan",
    "the solar project",
    "new bus lanes",
    "a vaccine study",
    "the harbour expansion",
    "a reading programme",
    "flood barriers",
    "the tax reform",
    "a coding bootcamp",
    "the river clean-up",
]


def news(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(_NEWS)
    return f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} on Monday."


def prompt(rng: random.Random, category: str) -> str:
    template = rng.choice(TEMPLATES[category])
    values = {k: rng.choice(v) for k, v in _FILL.items()}
    out = template
    while "{news}" in out:
        out = out.replace("{news}", news(rng), 1)
    return out.format(**values)


def test_vectors_are_unit_length_and_the_same_in_every_process():
    text = "Write a Python function that parses CSV; add tests!"
    a = Featurizer().transform(text)
    b = Featurizer().transform(text)
    assert a == b
    assert math.isclose(math.sqrt(sum(v * v for v in a.values())), 1.0)
    # CRC-32 buckets, not Python's salted hash: the same word lands in the same bucket.
    assert _bucket("w python") in a


def test_term_frequency_is_sublinear_and_stop_words_are_skipped():
    vec = Featurizer().transform("alpha alpha alpha beta the the the")
    ratio = vec[_bucket("w alpha")] / vec[_bucket("w beta")]
    assert math.isclose(ratio, 1 + math.log(3))
    assert _bucket("w the") not in vec


def test_instruction_words_outweigh_the_pasted_document():
    featurizer = Featurizer()
    vec = featurizer.transform("Translate into German:\n" + " ".join(_NEWS))
    top = sorted(vec, key=vec.__getitem__, reverse=True)[:2]
    assert {_bucket("w translate"), _bucket("w german")} == set(top)


def test_idf_learnt_online_weighs_common_words_down():
    featurizer = Featurizer()
    rng = random.Random(3)
    for _ in range(200):
        featurizer.learn(prompt(rng, rng.choice(list(TEMPLATES))) + " request")
    vec = featurizer.transform("request quaternion")
    assert vec.get(_bucket("w request"), 0.0) < vec[_bucket("w quaternion")]


def _purity(clusters: TaskClusters, seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    categories = list(TEMPLATES)
    for _ in range(600):
        clusters.assign(prompt(rng, rng.choice(categories)))
    by_cluster: dict[int, Counter] = defaultdict(Counter)
    by_category: dict[str, Counter] = defaultdict(Counter)
    documents = clusters.featurizer.documents
    for _ in range(300):
        category = rng.choice(categories)
        match = clusters.classify(prompt(rng, category))
        by_cluster[match.cluster][category] += 1
        by_category[category][match.cluster] += 1
    assert clusters.featurizer.documents == documents  # classifying does not learn
    return by_cluster, by_category


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kinds_of_requests_fall_into_different_clusters_without_seeds(seed):
    # With no seed clusters to anchor them, early clusters need a stricter threshold.
    clusters = TaskClusters(seeds=None, threshold=0.3)
    by_cluster, by_category = _purity(clusters, seed=seed)
    for counts in by_cluster.values():
        assert counts.most_common(1)[0][1] / sum(counts.values()) >= 0.9
    homes = {category: counts.most_common(1)[0][0] for category, counts in by_category.items()}
    assert len(set(homes.values())) == len(TEMPLATES)


def test_seeded_clusters_are_the_same_everywhere_and_separate_kinds():
    a, b = TaskClusters(), TaskClusters()
    assert [c.label for c in a.clusters.values()] == list(SEED_PROMPTS)
    assert a.classify("Translate this into Spanish: good morning").cluster == (
        b.classify("Translate this into Spanish: good morning").cluster
    )
    by_cluster, by_category = _purity(a, seed=2)
    for counts in by_cluster.values():
        assert counts.most_common(1)[0][1] / sum(counts.values()) >= 0.9
    assert a.label(by_category["code"].most_common(1)[0][0]) == "code"
    assert a.label(by_category["translation"].most_common(1)[0][0]) == "translation"


def test_new_kind_of_request_founds_a_cluster_with_a_parent():
    clusters = TaskClusters()
    before = set(clusters.clusters)
    rng = random.Random(4)
    for _ in range(5):
        clusters.assign(f"Convert {rng.randint(1, 99)} fahrenheit kelvin celsius thermometer")
    founded = set(clusters.clusters) - before
    assert len(founded) == 1
    (cluster_id,) = founded
    assert cluster_id >= 1000
    assert clusters.parent(cluster_id) in before
    assert clusters.clusters[cluster_id].count == 5


def test_cluster_cap_is_respected():
    clusters = TaskClusters(seeds=None, max_clusters=3, threshold=0.99)
    for word in ["alpha", "bravo", "charlie", "delta", "echo"]:
        clusters.assign(f"{word} {word}zz {word}yy")
    assert len(clusters.clusters) == 3


def test_state_round_trip():
    clusters = TaskClusters()
    rng = random.Random(6)
    for _ in range(200):
        clusters.assign(prompt(rng, rng.choice(list(TEMPLATES))))
    restored = TaskClusters(seeds=None)
    restored.load_state(clusters.state())
    assert set(restored.clusters) == set(clusters.clusters)
    for _ in range(50):
        text = prompt(rng, rng.choice(list(TEMPLATES)))
        assert restored.classify(text).cluster == clusters.classify(text).cluster
    summary = restored.summary()
    assert {s["label"] for s in summary} >= {"code", "translation"}
