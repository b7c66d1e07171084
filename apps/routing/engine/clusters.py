"""Task clusters: groups requests by what they ask for, so the bandit can learn per kind.

Online spherical k-means over the TF-IDF vectors of `features.Featurizer`:

- A cluster is the running sum of the unit vectors assigned to it; its direction is the
  spherical k-means centroid, and cosine similarity to it is `x . sum / |sum|`.
- The decision path only classifies (`classify`: features and one similarity pass); the
  request is learnt from afterwards (`learn`), off the latency-critical path.
- A request joins the most similar cluster. When even that one is less similar than
  `threshold` and fewer than `max_clusters` exist, the request founds a new cluster.
- Clusters are seeded deterministically from a small built-in set of prototype prompts per
  kind of task (SEED_PROMPTS), so every process starts with the same clusters under the
  same ids (0, 1, ...) and the bandit statistics they key in Redis mean the same thing
  everywhere. A cluster founded at run time gets an id derived from its founding
  request's strongest features (1000 and above), so two processes that found clusters
  independently never give one id two meanings; the periodic persistence stores the
  clusters and every process reloads them at start. A founded cluster remembers its
  parent, the nearest cluster at the time, whose bandit statistics serve as its prior
  until it has its own.
- The sums are kept in an inverted index (bucket -> {cluster: weight}), so similarity to
  every cluster costs one pass over the request's features. Each cluster keeps its
  `MAX_FEATURES` heaviest features, and its sum is halved once it has absorbed
  `HALF_LIFE` requests, so clusters follow a drifting workload.
"""

from __future__ import annotations

import heapq
import math
import zlib
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from apps.routing.engine.features import Featurizer, SparseVector

DEFAULT_THRESHOLD = 0.15
DEFAULT_MAX_CLUSTERS = 48
MAX_FEATURES = 240
SIGNIFICANT_FEATURES = 40
HALF_LIFE = 5000
SPAWNED_ID_BASE = 1000

# Prototype prompts per kind of task, a few each, written to be generic.
SEED_PROMPTS: dict[str, list[str]] = {
    "code": [
        "Write a Python function that parses the file and returns a dict; add unit tests.",
        "Fix this bug: TypeError in my JavaScript code `const x = items.map(i => i.id)`.",
        "Refactor the class below and explain the complexity. def run(self): return []",
        "Write a SQL query that joins orders and customers and groups by month.",
    ],
    "extraction": [
        "Extract the name, email address and phone number from this text as JSON.",
        "From the invoice below, list the invoice number, date, total amount and vendor.",
        "Pull out every date and organisation mentioned in the following paragraph.",
        "Return the fields title, author and year from this citation in JSON format.",
    ],
    "chat": [
        "Hi! How are you doing today?",
        "Thanks so much, that was really helpful. Have a great weekend!",
        "What's a good movie to watch tonight? I'm bored.",
        "Good morning, tell me something fun about cats.",
    ],
    "reasoning": [
        "Solve for x: 3x + 7 = 22. Show each step of the calculation.",
        "A train leaves at 3 pm at 80 km/h; another at 4 pm at 100 km/h. When does it catch up?",
        "Prove that the square root of 2 is irrational.",
        "If all bloops are razzies and some razzies are lazzies, what follows? Reason step by step.",
    ],
    "summarization": [
        "Summarize the following article in three bullet points.",
        "Give me a short summary of this meeting transcript and the key decisions.",
        "TL;DR of the report below, in one paragraph.",
        "Condense this document into an executive summary for leadership.",
    ],
    "translation": [
        "Translate the following text into French.",
        "Translate this paragraph from German to English: Wir freuen uns auf Ihre Antwort.",
        "How do you say 'where is the train station' in Spanish?",
        "Translate into Japanese, keeping a polite tone: Thank you for your order.",
    ],
    "writing": [
        "Write a short poem about the sea at night.",
        "Draft a friendly marketing email announcing our new product launch.",
        "Write a story for children about a brave little fox.",
        "Compose a LinkedIn post about our team's achievements this quarter.",
    ],
    "classification": [
        "Classify the sentiment of this review as positive, negative or neutral.",
        "Is this email spam or not spam? Answer with one word.",
        "Label the topic of each headline: sports, politics, business or technology.",
        "Categorize this support ticket by urgency: low, medium or high.",
    ],
}


@dataclass(slots=True)
class TaskMatch:
    """A request's task cluster and what is needed to learn from it later."""

    cluster: int
    similarity: float
    vector: SparseVector
    text: str


@dataclass(slots=True)
class Cluster:
    """One task cluster: the running sum of its members' vectors and its label."""

    id: int
    label: str
    count: int = 0
    sums: dict[int, float] = field(default_factory=dict)
    sq_norm: float = 0.0
    parent: int | None = None  # the nearest cluster when this one was founded


class TaskClusters:
    """Assigns prompts to task clusters and learns the clusters online."""

    def __init__(
        self,
        featurizer: Featurizer | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        max_clusters: int = DEFAULT_MAX_CLUSTERS,
        seeds: dict[str, list[str]] | None = SEED_PROMPTS,
    ) -> None:
        self.featurizer = featurizer or Featurizer()
        self.threshold = threshold
        self.max_clusters = max_clusters
        self.clusters: dict[int, Cluster] = {}
        self._postings: dict[int, dict[int, float]] = {}
        for cluster_id, (label, texts) in enumerate((seeds or {}).items()):
            cluster = Cluster(cluster_id, label)
            self.clusters[cluster_id] = cluster
            for text in texts:
                self.featurizer.learn(text)
                vec = self.featurizer.transform(text)
                self._add(cluster, vec, self._dots(vec).get(cluster_id, 0.0))
        self.seed_documents = self.featurizer.documents

    # --- reading ----------------------------------------------------------------------

    def _dots(self, vec: SparseVector, *, significant_only: bool = False) -> dict[int, float]:
        """Raw dot products of `vec` with every cluster's sum that shares a feature.

        With `significant_only` and a long vector, only the SIGNIFICANT_FEATURES heaviest
        features count: the instruction's words carry most of the mass, so the nearest
        cluster rarely changes, and the pass costs a fraction.
        """
        acc: dict[int, float] = {}
        get = acc.get
        postings = self._postings.get
        items: Any = vec.items()
        if significant_only and len(vec) > 3 * SIGNIFICANT_FEATURES:
            items = heapq.nlargest(SIGNIFICANT_FEATURES, items, key=itemgetter(1))
        for bucket, value in items:
            posting = postings(bucket)
            if posting:
                for cluster_id, weight in posting.items():
                    acc[cluster_id] = get(cluster_id, 0.0) + value * weight
        return acc

    def nearest(self, vec: SparseVector, *, fast: bool = False) -> tuple[int | None, float, float]:
        """(cluster id, cosine similarity, raw dot) of the most similar cluster."""
        best, best_sim, best_dot = None, -1.0, 0.0
        clusters = self.clusters
        for cluster_id, dot in self._dots(vec, significant_only=fast).items():
            cluster = clusters[cluster_id]
            if cluster.sq_norm <= 0:
                continue
            sim = dot / math.sqrt(cluster.sq_norm)
            if sim > best_sim:
                best, best_sim, best_dot = cluster_id, sim, dot
        if best is None and clusters:
            # Nothing shared with any cluster: the oldest one stands in.
            best = next(iter(clusters))
            best_sim = 0.0
        return best, best_sim, best_dot

    def label(self, cluster_id: int) -> str:
        cluster = self.clusters.get(cluster_id)
        return cluster.label if cluster else f"cluster-{cluster_id}"

    # --- learning ---------------------------------------------------------------------

    def classify(self, text: str) -> TaskMatch:
        """The cluster of `text`, without learning: the decision path's call."""
        vec = self.featurizer.transform(text)
        cluster_id, sim, _ = self.nearest(vec, fast=True)
        return TaskMatch(cluster_id if cluster_id is not None else 0, sim, vec, text)

    def learn(self, match: TaskMatch) -> int:
        """Learn from a classified request, off the decision path: count it towards IDF
        and add it to its cluster, or found a new one when it matched nothing well.
        Returns the cluster it joined."""
        self.featurizer.learn(match.text)
        vec = match.vector
        if not vec:
            return match.cluster
        cluster = self.clusters.get(match.cluster)
        if (cluster is None or match.similarity < self.threshold) and len(
            self.clusters
        ) < self.max_clusters:
            cluster = self._found(vec, parent=match.cluster if cluster is not None else None)
        elif cluster is None:
            return match.cluster
        sums = cluster.sums
        dot = sum([v * sums.get(b, 0.0) for b, v in vec.items()])
        self._add(cluster, vec, dot)
        return cluster.id

    def assign(self, text: str, *, learn: bool = True) -> int:
        """Classify `text` and, with `learn`, learn from it at once."""
        match = self.classify(text)
        return self.learn(match) if learn else match.cluster

    def assign_vector(self, vec: SparseVector, *, learn: bool = True) -> int:
        cluster_id, sim, dot = self.nearest(vec)
        if not learn or not vec:
            return cluster_id if cluster_id is not None else 0
        if (cluster_id is None or sim < self.threshold) and len(self.clusters) < self.max_clusters:
            cluster = self._found(vec)
            dot = 0.0
        else:
            cluster = self.clusters[cluster_id]
        self._add(cluster, vec, dot)
        return cluster.id

    def parent(self, cluster_id: int) -> int | None:
        cluster = self.clusters.get(cluster_id)
        return cluster.parent if cluster else None

    def _found(self, vec: SparseVector, *, parent: int | None) -> Cluster:
        top = sorted(vec, key=vec.__getitem__, reverse=True)[:6]
        cluster_id = SPAWNED_ID_BASE + zlib.crc32(repr(sorted(top)).encode()) % 1_000_000
        while cluster_id in self.clusters:
            cluster_id += 1
        names = [self.featurizer.vocab[b] for b in top if b in self.featurizer.vocab]
        cluster = Cluster(cluster_id, " ".join(names[:3]) or f"cluster-{cluster_id}", parent=parent)
        self.clusters[cluster_id] = cluster
        return cluster

    def _add(self, cluster: Cluster, vec: SparseVector, dot: float) -> None:
        sums = cluster.sums
        postings = self._postings
        cid = cluster.id
        for bucket, value in vec.items():
            new = sums.get(bucket, 0.0) + value
            sums[bucket] = new
            posting = postings.get(bucket)
            if posting is None:
                postings[bucket] = {cid: new}
            else:
                posting[cid] = new
        cluster.sq_norm += 2.0 * dot + sum(v * v for v in vec.values())
        cluster.count += 1
        if len(sums) > MAX_FEATURES + MAX_FEATURES // 2:
            self._prune(cluster)
        if cluster.count % HALF_LIFE == 0:
            self._scale(cluster, 0.5)

    def _prune(self, cluster: Cluster) -> None:
        keep = sorted(cluster.sums, key=cluster.sums.__getitem__, reverse=True)[:MAX_FEATURES]
        kept = set(keep)
        for bucket in list(cluster.sums):
            if bucket not in kept:
                del cluster.sums[bucket]
                posting = self._postings.get(bucket)
                if posting is not None:
                    posting.pop(cluster.id, None)
                    if not posting:
                        del self._postings[bucket]
        cluster.sq_norm = sum(v * v for v in cluster.sums.values())

    def _scale(self, cluster: Cluster, factor: float) -> None:
        for bucket in cluster.sums:
            value = cluster.sums[bucket] * factor
            cluster.sums[bucket] = value
            self._postings[bucket][cluster.id] = value
        cluster.sq_norm *= factor * factor

    # --- persistence ------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "max_clusters": self.max_clusters,
            "seed_documents": self.seed_documents,
            "featurizer": self.featurizer.state(),
            "clusters": [
                {
                    "id": c.id,
                    "label": c.label,
                    "parent": c.parent,
                    "count": c.count,
                    "sums": {str(b): round(v, 6) for b, v in c.sums.items()},
                }
                for c in self.clusters.values()
            ],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Replace the clusters with persisted ones (seeds included, as they were saved)."""
        self.featurizer.load_state(state.get("featurizer") or {})
        self.seed_documents = int(state.get("seed_documents", 0))
        self.clusters = {}
        self._postings = {}
        for item in state.get("clusters") or ():
            parent = item.get("parent")
            cluster = Cluster(
                int(item["id"]),
                str(item["label"]),
                int(item.get("count", 0)),
                parent=int(parent) if parent is not None else None,
            )
            cluster.sums = {int(b): float(v) for b, v in (item.get("sums") or {}).items()}
            cluster.sq_norm = sum(v * v for v in cluster.sums.values())
            self.clusters[cluster.id] = cluster
            for bucket, value in cluster.sums.items():
                self._postings.setdefault(bucket, {})[cluster.id] = value

    def summary(self) -> list[dict[str, Any]]:
        """Clusters for the console: id, label, requests absorbed, top words."""
        out = []
        vocab = self.featurizer.vocab
        for c in self.clusters.values():
            top = sorted(c.sums, key=c.sums.__getitem__, reverse=True)
            words = [vocab[b] for b in top if b in vocab][:8]
            out.append(
                {
                    "id": c.id,
                    "label": c.label,
                    "parent": c.parent,
                    "count": c.count,
                    "top_words": words,
                }
            )
        return out
