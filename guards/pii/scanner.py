"""PiiScanner: the mission's PII policy applied to page text, typed values and outgoing requests.

Why it is fast (a 50 KB page in a fraction of a raw Presidio call):

* only the recognizers of the mission's entities are built (``engine.build_analyzer``);
* a per-entity pre-filter (``guards/pii/prefilter.py``) skips, for each text block, the entities that
  cannot match it: a *necessary* condition of every pattern of that recognizer, so it never costs
  recall. Entities without a known pre-filter (NER ones, custom ones) always run;
* blocks that need the same entities are joined (one Presidio call, not one per block); a result
  that crosses a block boundary makes those blocks be rescanned one by one;
* results are cached per block (blake2b of the text), and a page remembers which blocks it has
  seen, so an unchanged rescan costs only the hashing;
* a big phone pass (half of a PII-heavy page's scan) is shared with a worker process
  (``phone_worker``, ``offload_phone``): a second core, where a thread would wait on the GIL.

Context words ("phone", "ssn", ...) raise scores in Presidio, but need lemmas a model-less engine
does not produce. We restore them cheaply: the 5 words before a match, inside its block (Presidio's
default window), plus caller-given words (an input's label), with Presidio's own boost (+0.35, at
least 0.4). With a spaCy model Presidio does this itself and this step is skipped.

Fail closed: any error inside a scan, or a scan slower than ``timeout_s``, raises PiiScanError.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, TypeVar

from guards.pii.engine import LANGUAGE, build_analyzer, check_entities, recognize_direct
from guards.pii.errors import PiiScanError
from guards.pii.finding import Finding, Where, dedupe_request_findings
from guards.pii.joined import Hit as _Hit
from guards.pii.joined import joined_pass
from guards.pii.keyed import key_id, masked_preview, value_hmac
from guards.pii.phone_worker import MIN_CHARS, PhoneWorker, Ticket, worker_for, worker_share
from guards.pii.pieces import BREAKS, phone_spans, pieces
from guards.pii.prefilter import entities_per_block
from guards.pii.request_texts import request_texts

if TYPE_CHECKING:
    from missions.model import PiiPolicy

T = TypeVar("T")

_WORD = re.compile(r"\w+")
_EMAILISH = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
_CONTEXT_WINDOW_CHARS = 160
_TEXT_MEMO_CAP = 2048
_KEYED_CAP = 20_000

_Raw = tuple[str, float, int, int]  # entity_type, score, start, end (relative to the block)

def _digest(text: str, salt: str = "") -> bytes:
    h = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
    if salt:
        h.update(b"\x00" + salt.encode("utf-8", "surrogatepass"))
    return h.digest()


class PiiScanner:
    """Scans with the mission's ``pii`` policy. Built once per run; not cheap to build (≈0.1 s + imports)."""

    def __init__(
        self,
        policy: PiiPolicy,
        key: bytes,
        *,
        timeout_s: float | None = 10.0,
        analyzer: Any = None,
        cache_size: int = 20_000,
        max_pages: int = 64,
        offload_phone: bool = False,
    ) -> None:
        self.policy = policy
        self._key = key
        self.key_id = key_id(key)
        self.threshold = policy.threshold
        self.allow = frozenset(policy.allow)
        self.timeout_s = timeout_s
        if analyzer is None:
            self.entities: tuple[str, ...] = tuple(check_entities(policy.entities, policy.nlp_model))
        elif policy.entities is not None:
            self.entities = tuple(policy.entities)
        else:  # a given analyzer and no list: every entity that analyzer's recognizers support
            self.entities = tuple(sorted({e for r in analyzer.registry.recognizers for e in r.supported_entities}))
        self.analyzer: Any = None
        # Pieces instead of whole blocks: only for the recognizers build_analyzer makes without a model.
        self._pieces = analyzer is None and policy.nlp_model is None
        if self.entities:
            self.analyzer = analyzer if analyzer is not None else build_analyzer(self.entities, policy.nlp_model)
        self._own_context = policy.nlp_model is None
        # Model-less engine: call its recognizers directly (see _presidio); else AnalyzerEngine.analyze.
        self._direct = self._own_context and type(getattr(self.analyzer, "nlp_engine", None)).__name__ == (
            "NoOpNlpEngine")
        self._recognizer_sets: dict[tuple[str, ...], list[Any]] = {}
        self._cache: OrderedDict[bytes, tuple[_Raw, ...]] = OrderedDict()
        self._cache_size = cache_size
        self._texts: dict[tuple[str, str, tuple[str, ...]], tuple[Finding, ...]] = {}
        self._keyed: dict[tuple[str, str], tuple[str, str]] = {}  # (entity, value) -> (HMAC, preview)
        self._pages: OrderedDict[str, set[bytes]] = OrderedDict()
        self._max_pages = max_pages
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        self.analyzer_calls = 0  # Presidio analyze() calls so far (tests and benchmarks read it)
        self._offload = offload_phone  # big phone passes in a worker process (phone_worker)
        self._phone_worker: PhoneWorker | None = None

    # ---------------------------------------------------------------- public API

    def scan_text(self, text: str, where: Where, *, context: Sequence[str] = ()) -> list[Finding]:
        """Findings ≥ threshold in one text (an input value: pass its label/name as ``context``).

        Kept per exact (text, where, context): a request's header texts recur on every request."""
        key = (text, where, tuple(context))
        found = self._texts.get(key)
        if found is None:
            found = tuple(self._findings(text, self._analyze([text], context)[0], where, self.threshold))
            if len(self._texts) >= _TEXT_MEMO_CAP:
                self._texts.clear()
            self._texts[key] = found
        return list(found)

    def detect(self, text: str, threshold: float | None = None) -> list[Finding]:
        """Everything ≥ ``threshold`` (default: the policy's) that is a whole token, for redaction.

        Unlike a scan, a match glued to letters or digits on either side is left out: raw Presidio
        reads a licence number inside a sha256 ("ba6277758…"), and redacting it would corrupt the
        hash in a record while hiding nothing (a value the run really saw is redacted as a known
        value wherever it recurs)."""
        raws = self._analyze([text], ())[0]
        raws = tuple(r for r in raws if not _glued(text, r[2], r[3]))
        return self._findings(text, raws, "page", self.threshold if threshold is None else threshold)

    def scan_page(self, page_key: str, texts: Sequence[str], *, threshold: float | None = None) -> list[Finding]:
        """Findings ≥ ``threshold`` (default: the policy's) in the blocks this page has not shown before
        (each Finding has its ``block`` index).

        An unchanged rescan returns [] without calling Presidio. A block seen on another page is
        reported again for this one, from the cache (raw scores: any threshold). A block is reported
        once per page, so a caller uses one threshold per page key (the runtime: the redaction one)."""
        with self._lock:
            digests = [_digest(t) for t in texts]
            seen = self._pages.get(page_key)
            if seen is None:
                seen = set()
                self._pages[page_key] = seen
                while len(self._pages) > self._max_pages:
                    self._pages.popitem(last=False)
            else:
                self._pages.move_to_end(page_key)
            new = [i for i, d in enumerate(digests) if d not in seen]
            if not new:
                return []
            raws = self._analyze([texts[i] for i in new], (), digests=[digests[i] for i in new])
            out: list[Finding] = []
            for i, r in zip(new, raws, strict=True):
                out.extend(self._findings(texts[i], r, "page", self.threshold if threshold is None else threshold,
                                          block=i))
            seen.update(digests[i] for i in new)
            return out

    def remembers(self, page_key: str) -> bool:
        """Whether ``scan_page`` would report only blocks this page has not shown (not forgotten, not evicted)."""
        with self._lock:
            return page_key in self._pages

    def forget_page(self, page_key: str) -> None:
        with self._lock:
            self._pages.pop(page_key, None)

    def scan_request(self, url: str, body: bytes | None, content_type: str | None) -> list[Finding]:
        """Findings in the path, query and body of a request, raw and decoded (host not scanned)."""
        try:
            texts = list(request_texts(url, body, content_type))
        except Exception as e:  # decoding must not fail open either
            raise PiiScanError(f"request could not be decoded for the PII scan: {type(e).__name__}") from e
        raws = self._analyze([t for _, t, _ in texts], ())
        found: list[tuple[int, Finding]] = []
        for (source, text, fine), r in zip(texts, raws, strict=True):
            found.extend((fine, f) for f in self._findings(text, r, "request", self.threshold, source=source))
        return dedupe_request_findings(found)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._phone_worker is not None:
            self._phone_worker.close()

    # ---------------------------------------------------------------- internals

    def _findings(
        self, text: str, raws: Iterable[_Raw], where: Where, threshold: float, *, block: int | None = None,
        source: str = "text",
    ) -> list[Finding]:
        out = []
        keyed = self._keyed
        for entity, score, start, end in raws:
            if score < threshold:
                continue
            value = text[start:end]
            got = keyed.get((entity, value))
            if got is None:  # a value recurs (a phone, an IP on many rows): its HMAC is computed once
                got = (value_hmac(self._key, entity, value), masked_preview(entity, value))
                if len(keyed) >= _KEYED_CAP:
                    keyed.clear()
                keyed[(entity, value)] = got
            out.append(Finding(
                entity_type=entity, score=round(score, 4), start=start, end=end, value=value,
                value_hmac=got[0], preview=got[1], where=where, allowed=entity in self.allow, block=block,
                source=source,
            ))
        return out

    def _analyze(
        self, texts: Sequence[str], context: Sequence[str], digests: Sequence[bytes] | None = None
    ) -> list[tuple[_Raw, ...]]:
        """Raw results per text (cached, pre-filtered, grouped); errors and timeouts → PiiScanError."""
        if not self.entities:
            return [() for _ in texts]
        salt = "\x1f".join(context)
        with self._lock:
            if digests is None or salt:
                digests = [_digest(t, salt) for t in texts]
            results: list[tuple[_Raw, ...] | None] = [None] * len(texts)
            todo: dict[bytes, int] = {}
            for i, d in enumerate(digests):
                hit = self._cache.get(d)
                if hit is not None:
                    self._cache.move_to_end(d)
                    results[i] = hit
                elif d not in todo:
                    todo[d] = i
            if todo:
                pending = [texts[i] for i in todo.values()]
                # The pre-filter (linear, cheap) here: when no block can hold any entity, no hand-off
                # to the worker thread for nothing (~13 % of a request's gate time).
                candidates = self._guarded(lambda: entities_per_block(self.entities, pending, self._own_context),
                                           inline=True)
                raw = (self._guarded(lambda: self._analyze_blocks(pending, context, candidates))
                       if any(candidates.values()) else [() for _ in pending])
                computed = dict(zip(todo, raw, strict=True))
                self._cache.update(computed)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
                for i, d in enumerate(digests):
                    if results[i] is None:
                        results[i] = computed[d]
            return [r if r is not None else () for r in results]

    def _guarded(self, fn: Callable[[], T], *, inline: bool = False) -> T:
        try:
            if self.timeout_s is None or inline:
                return fn()
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warden-pii")
            future = self._executor.submit(fn)
            try:
                return future.result(timeout=self.timeout_s)
            except FutureTimeout:
                # The worker cannot be killed: abandon it (its result is ignored) and start afresh.
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
                raise PiiScanError(f"PII scan exceeded its {self.timeout_s}s timeout") from None
        except PiiScanError:
            raise
        except Exception as e:
            # Only the type: a recognizer's message could quote the scanned text.
            raise PiiScanError(f"PII scan failed ({type(e).__name__})") from e

    def _analyze_blocks(
        self, blocks: Sequence[str], context: Sequence[str], candidates: dict[str, list[int]]
    ) -> list[tuple[_Raw, ...]]:
        """One joined Presidio pass per entity over the blocks its pre-filter lets through, then the
        per-block finish. Per entity rather than per set of entities: a page's blocks fall into many
        different entity sets (one Presidio call each, with its fixed cost); per entity there are at
        most len(entities) calls, each reading only the blocks that may hold that entity. A big
        phone pass goes to the worker process first (``phone_worker``) and is read back last."""
        sent = self._offload_phone(blocks, candidates)
        by_entity: dict[str, list[list[_Hit]]] = {}
        for e in self.entities:
            idxs = candidates[e]
            if idxs and not (sent is not None and e == "PHONE_NUMBER"):
                by_entity[e] = self._entity_pass(e, [blocks[i] for i in idxs], context)
        if sent is not None:  # the phone blocks the worker did not get, here, then the worker's answer
            idxs, (ticket, n) = candidates["PHONE_NUMBER"], sent
            rest = self._entity_pass("PHONE_NUMBER", [blocks[i] for i in idxs[n:]], context)
            got = self._phone_worker.result(n, ticket) if self._phone_worker is not None else None
            if got is None:
                got = self._entity_pass("PHONE_NUMBER", [blocks[i] for i in idxs[:n]], context)
            by_entity["PHONE_NUMBER"] = got + rest
        per_block: list[list[_Hit]] = [[] for _ in blocks]
        touched: set[int] = set()
        for e in self.entities:  # in the entities' order, wherever each pass ran
            if e in by_entity:
                touched.update(candidates[e])
                for k, h in zip(candidates[e], by_entity[e], strict=True):
                    per_block[k].extend(h)
        out: list[tuple[_Raw, ...]] = [() for _ in blocks]
        for i in touched:
            out[i] = tuple(self._finish(blocks[i], per_block[i], context))
        return out

    def _entity_pass(self, e: str, texts: list[str], context: Sequence[str]) -> list[list[_Hit]]:
        """One entity's joined pass here, over the runs its matches can lie in."""
        if e == "PHONE_NUMBER" and self._own_context:
            spans: list[Any] = [phone_spans(t) for t in texts]
        elif self._pieces and e in BREAKS:  # the runs a match can lie in (guards/pii/pieces.py)
            spans = [pieces(e, t) for t in texts]
        else:
            spans = [(0, len(t)) for t in texts]
        return joined_pass(texts, spans, lambda text: self._presidio(text, (e,), context))

    def start_phone_worker(self) -> None:
        """Start the worker now (``warm_up``, beside the launch) rather than at the first big pass."""
        if (worker := self._worker()) is not None:
            worker.start()

    def _worker(self) -> PhoneWorker | None:
        """The phone worker, made on first need; None where it could not do what ``_entity_pass`` does."""
        if self._offload and self._direct and self._phone_worker is None:
            self._phone_worker = worker_for(self.analyzer)
            self._offload = self._phone_worker is not None
        return self._phone_worker if self._offload and self._direct else None

    def _offload_phone(self, blocks: Sequence[str], candidates: dict[str, list[int]]) -> tuple[Ticket, int] | None:
        """The worker's share of a big phone pass handed to it: (ticket, how many blocks). Only where it
        does what ``_entity_pass`` would: the model-less engine, Warden's one phone recognizer."""
        idxs = candidates.get("PHONE_NUMBER") or []
        sizes = [len(blocks[i]) for i in idxs]
        if sum(sizes) < MIN_CHARS:
            return None
        if (worker := self._worker()) is None:
            return None
        n = worker_share(sizes)
        ticket = worker.submit([blocks[i] for i in idxs[:n]])
        return None if ticket is None else (ticket, n)

    def _presidio(self, text: str, ents: tuple[str, ...], context: Sequence[str]) -> list[_Hit]:
        """One Presidio call; scores before any threshold."""
        self.analyzer_calls += 1
        if self._direct:
            recognizers = self._recognizer_sets.get(ents)
            if recognizers is None:
                recognizers = self.analyzer.registry.get_recognizers(language=LANGUAGE, entities=list(ents))
                self._recognizer_sets[ents] = recognizers
            results = recognize_direct(self.analyzer, recognizers, text, ents)
        else:
            results = self.analyzer.analyze(
                text=text, language=LANGUAGE, entities=list(ents), score_threshold=0.0,
                context=None if self._own_context or not context else list(context),
            )
        hits: list[_Hit] = []
        for r in results:
            meta = r.recognition_metadata or {}
            hits.append((r.entity_type, float(r.score), r.start, r.end, str(meta.get("recognizer_identifier", "")),
                         bool(meta.get("is_score_enhanced_by_context"))))
        return hits

    def _finish(self, text: str, hits: list[_Hit], context: Sequence[str]) -> list[_Raw]:
        """Context boost (model-less engine only), URL-inside-e-mail noise removed, duplicates merged."""
        recognizers = {r.id: r for r in self.analyzer.registry.recognizers}
        enhancer = self.analyzer.context_aware_enhancer
        factor = float(getattr(enhancer, "context_similarity_factor", 0.35))
        floor = float(getattr(enhancer, "min_score_with_context_similarity", 0.4))
        prefix_n = int(getattr(enhancer, "context_prefix_count", 5))
        extra = [w.lower() for w in context]
        raws: dict[tuple[str, int, int], float] = {}
        for entity, score, s, e, rec_id, enhanced in hits:
            rec = recognizers.get(rec_id)
            if self._own_context and not enhanced and rec is not None and rec.context:
                words = [w.lower() for w in _WORD.findall(text[max(0, s - _CONTEXT_WINDOW_CHARS):s])[-prefix_n:]]
                if any(c.lower() in w for c in rec.context for w in words + extra):
                    score = min(1.0, max(score + factor, floor))
            key = (entity, s, e)
            raws[key] = max(score, raws.get(key, 0.0))
        # A phone match glued to letters/digits on either side is part of a longer token (a hex
        # digest, an id): the digit run "9372345" cut out of a sha256 parses as a phone number, where
        # phonenumbers, reading the whole text, refuses a candidate next to a letter. Only phone hits
        # come from cut-out spans; every other entity saw the whole block, exactly as raw Presidio.
        out = [(en, sc, s, e) for (en, s, e), sc in raws.items() if en != "PHONE_NUMBER" or not _glued(text, s, e)]
        if any(r[0] == "URL" for r in out):
            emails = [(m.start(), m.end()) for m in _EMAILISH.finditer(text)]
            out = [r for r in out if r[0] != "URL" or not any(a <= r[2] and r[3] <= b for a, b in emails)]
        return sorted(out, key=lambda r: (r[2], r[3]))


def _glued(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` continues a longer alphanumeric token on either side."""
    return (start > 0 and text[start - 1].isalnum() and text[start].isalnum()) or (
        end < len(text) and text[end].isalnum() and text[end - 1].isalnum()
    )

