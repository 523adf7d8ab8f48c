"""`describe`: one checked, accounted `Generation` per caption request.

The shard's requests are sent in `batch_order`: requests with an image before text-only ones, longest
prompt first (ties by position), so each chunk is one full batch of similar lengths (little padding)
and only the shard's last chunk is short; results come back in request order. For each chunk (one
resource batch / one concurrency wave):

1. build the versioned prompt from the facts (version and hash recorded);
2. look every call up in the `CallCache`; send only the misses to `MLLMResource.generate`, and
   store their answers right after the call (a killed run loses at most this chunk);
3. parse the five sections and the description, run `check_caption`;
4. an answer cut at the token limit is asked once more with the larger limit, then flagged
   (``truncated``); answers with refusals, forbidden phrases, missing sections or too little text
   are re-asked with a note (up to ``max_retries``), keeping the best attempt;
5. a failed request (HTTP 400, timeout after transport retries, ...) is flagged
   ``backend_error:<code>`` with the server's words in the settings; the shard goes on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from medtrinity_assets.captions import (
    PROMPT_VERSION,
    CaptionCheckConfig,
    build_prompt,
    check_caption,
    compose_caption,
    prompt_hash,
    retry_prompt,
)
from medtrinity_assets.captions.composer import COMPOSER_VERSION
from medtrinity_assets.captions import format_sections
from medtrinity_assets.captions.sections import DESCRIPTION_KEY, SECTION_KEYS, description_found, parse_output
from medtrinity_assets.records import CaptionFacts
from medtrinity_resources.mllm_backends import RawOutput

from .cache import CallCache, call_key, content_hash

#: problem-code prefixes that make `describe` ask again with a note
RETRYABLE_PROBLEMS: tuple[str, ...] = (
    "refusal",
    "forbidden_phrase",
    "missing_section",
    "too_short",
    "ai_self_reference",
    "hedging",
    "repetition",
)


@dataclass
class CaptionRequest:
    """One description to write: an id (the ROI id), the facts, and the overlay PNG (None: text only)."""

    request_id: str
    facts: CaptionFacts
    image_png: bytes | None = None


@dataclass(frozen=True)
class GenerationSettings:
    """Loop policy (the caption asset's Dagster config)."""

    max_retries: int = 2
    min_words: int = 25
    max_words: int = 400

    def check_config(self) -> CaptionCheckConfig:
        return CaptionCheckConfig(min_words=self.min_words, max_words=self.max_words)


@dataclass
class Generation:
    """A written description with everything needed to reproduce, audit and cost it."""

    request_id: str
    text: str
    sections: dict[str, str]
    backend: str
    model: str
    model_version: str
    prompt_version: str
    prompt_hash: str
    settings: dict = field(default_factory=dict)
    attempts: int = 1
    problems: list[str] = field(default_factory=list)
    tokens_in: int = 0  # summed over attempts
    tokens_out: int = 0  # summed over attempts
    seconds: float = 0.0  # model time paid for this caption (its share of each call it was in)
    model_calls: int = 0  # attempts that went to the model (the others came from the cache)
    cache_hit: bool = False  # every attempt came from the call cache


def is_retryable(problems: list[str]) -> bool:
    return any(p.split(":")[0] in RETRYABLE_PROBLEMS for p in problems)


def _rank(problems: list[str]) -> tuple[int, int]:
    return (sum(p.split(":")[0] in RETRYABLE_PROBLEMS for p in problems), len(problems))


#: the answer as JSON: the five sections and the description (served backends constrain decoding to it)
ANSWER_SCHEMA: dict = {
    "type": "object",
    "properties": {k: {"type": "string"} for k in (*SECTION_KEYS, DESCRIPTION_KEY)},
    "required": [*SECTION_KEYS, DESCRIPTION_KEY],
    "additionalProperties": False,
}


def answer_text(raw_text: str) -> str:
    """The sectioned text of an answer given as JSON (schema above); other answers as they are."""
    stripped = raw_text.strip()
    if not stripped.startswith("{"):
        return raw_text
    try:
        data = json.loads(stripped)
    except ValueError:
        return raw_text
    if not isinstance(data, dict) or not all(isinstance(data.get(k, ""), str) for k in (*SECTION_KEYS, DESCRIPTION_KEY)):
        return raw_text
    return format_sections({k: data.get(k, "") for k in SECTION_KEYS}, data.get(DESCRIPTION_KEY, ""))


def judge(raw: RawOutput, facts: CaptionFacts, config: CaptionCheckConfig) -> tuple[str, dict[str, str], list[str]]:
    """``(text, sections, problems)`` of one backend answer."""
    if raw.error:
        return "", {k: "" for k in SECTION_KEYS}, [f"backend_error:{raw.error}"]
    answer = answer_text(raw.text)
    text, sections = parse_output(answer)
    problems = check_caption(text, sections, facts, config)
    if not description_found(answer):
        problems.append("missing_section:description")
    if raw.truncated:
        problems.append("truncated")
    return text, sections, problems


@dataclass
class _State:
    prompt: str
    asked: str
    limit: int
    image_hash: str
    best: tuple | None = None  # (problems, text, sections, raw, asked prompt hash, token limit)
    attempts: int = 0
    calls: int = 0
    content_retries: int = 0
    widened: bool = False
    tokens: list[int] = field(default_factory=lambda: [0, 0])
    seconds: float = 0.0


class _Caller:
    """Cached `mllm.generate`: misses go to the model, their answers are stored right after."""

    def __init__(self, mllm, cache: CallCache, identity: dict) -> None:
        self.mllm, self.cache, self.identity = mllm, cache, identity

    def call(self, prompts, images, image_hashes, limits) -> list[tuple[RawOutput, bool, float]]:
        keys = [call_key(h, p, self.identity, n) for p, h, n in zip(prompts, image_hashes, limits, strict=True)]
        found = self.cache.get_many(keys)
        results: list[tuple[RawOutput, bool, float] | None] = [(f, True, 0.0) if f else None for f in found]
        misses = [i for i, f in enumerate(found) if f is None]
        for limit in sorted({limits[i] for i in misses}):
            group = [i for i in misses if limits[i] == limit]
            t0 = time.perf_counter()
            outs = self.mllm.generate([prompts[i] for i in group], [images[i] for i in group], limit, ANSWER_SCHEMA)
            share = (time.perf_counter() - t0) / max(1, len(group))
            self.cache.put_many([(keys[i], out) for i, out in zip(group, outs, strict=True)])
            for i, out in zip(group, outs, strict=True):
                results[i] = (out, False, share)
        return results  # type: ignore[return-value]


def describe(
    mllm, requests: list[CaptionRequest], cache: CallCache | None = None, settings: GenerationSettings | None = None
) -> list[Generation]:
    """One Generation per request, same order; problems flagged, nothing dropped."""
    settings = settings or GenerationSettings()
    cache = cache or CallCache(None, enabled=False)
    if not requests:
        return []
    if not mllm.calls_model:
        return [_compose(r, settings.check_config()) for r in requests]
    identity = mllm.identity()
    caller = _Caller(mllm, cache, identity)
    prompts = [build_prompt(r.facts) for r in requests]
    order = batch_order(prompts, [r.image_png for r in requests])
    out: list[Generation | None] = [None] * len(requests)
    step = max(1, mllm.checkpoint_size)
    for start in range(0, len(order), step):
        chunk = order[start : start + step]
        gens = _describe_chunk(caller, mllm, [requests[i] for i in chunk], [prompts[i] for i in chunk], settings, identity)
        for i, gen in zip(chunk, gens, strict=True):
            out[i] = gen
    return out  # type: ignore[return-value]


def batch_order(prompts: list[str], images: list[bytes | None]) -> list[int]:
    """Request indices in sending order: with an image first, then longest prompt first, then position."""
    return sorted(range(len(prompts)), key=lambda i: (images[i] is None, -len(prompts[i]), i))


def _next_step(state: _State, problems: list[str], settings: GenerationSettings, widen_to: int) -> bool:
    """Update what to ask next; False when this request is done."""
    if any(p.startswith("backend_error") for p in problems):
        return False
    if "truncated" in problems:
        if state.widened or widen_to <= state.limit:
            return False
        state.widened, state.limit = True, widen_to
        return True
    if is_retryable(problems) and state.content_retries < settings.max_retries:
        state.content_retries += 1
        state.asked = retry_prompt(state.prompt, problems)
        return True
    return False


def _describe_chunk(
    caller: _Caller, mllm, requests, prompts: list[str], settings: GenerationSettings, identity: dict
) -> list[Generation]:
    config = settings.check_config()
    widen_to = mllm.truncation_max_new_tokens or 2 * mllm.max_new_tokens
    states = [
        _State(prompt, prompt, mllm.max_new_tokens, content_hash(r.image_png))
        for r, prompt in zip(requests, prompts, strict=True)
    ]
    pending = list(range(len(requests)))
    while pending:
        answers = caller.call(
            [states[i].asked for i in pending],
            [requests[i].image_png for i in pending],
            [states[i].image_hash for i in pending],
            [states[i].limit for i in pending],
        )
        again = []
        for i, (raw, hit, secs) in zip(pending, answers, strict=True):
            st = states[i]
            st.attempts += 1
            st.calls += 0 if hit else 1
            st.seconds += secs
            st.tokens[0] += raw.tokens_in
            st.tokens[1] += raw.tokens_out
            text, sections, problems = judge(raw, requests[i].facts, config)
            if st.best is None or _rank(problems) < _rank(st.best[0]):
                st.best = (problems, text, sections, raw, prompt_hash(st.asked), st.limit)
            if _next_step(st, problems, settings, widen_to):
                again.append(i)
        pending = again
    return [_generation(r, st, identity) for r, st in zip(requests, states, strict=True)]


def _generation(request: CaptionRequest, st: _State, identity: dict) -> Generation:
    problems, text, sections, raw, asked_hash, limit = st.best  # type: ignore[misc]
    settings = {**identity["settings"], "max_new_tokens": limit}
    if identity.get("revision"):
        settings["revision"] = identity["revision"]
    if asked_hash != prompt_hash(st.prompt):
        settings["answer_prompt_hash"] = asked_hash  # the retry prompt that produced it
    if raw.detail:
        settings["error_detail"] = raw.detail
    return Generation(
        request_id=request.request_id,
        text=text,
        sections=sections,
        backend=identity["backend"],
        model=identity["model"],
        model_version=raw.model_version or identity.get("revision", ""),
        prompt_version=PROMPT_VERSION,
        prompt_hash=prompt_hash(st.prompt),
        settings=settings,
        attempts=st.attempts,
        problems=problems,
        tokens_in=st.tokens[0],
        tokens_out=st.tokens[1],
        seconds=st.seconds,
        model_calls=st.calls,
        cache_hit=st.calls == 0,
    )


def _compose(request: CaptionRequest, config: CaptionCheckConfig) -> Generation:
    text, sections = compose_caption(request.facts, seed=request.request_id)
    return Generation(
        request_id=request.request_id,
        text=text,
        sections=sections,
        backend="grounded_composer",
        model="grounded_composer",
        model_version=COMPOSER_VERSION,
        prompt_version=PROMPT_VERSION,
        prompt_hash=prompt_hash(build_prompt(request.facts)),
        settings={"composer_version": COMPOSER_VERSION, "seed": request.request_id, "deterministic": True},
        attempts=1,
        problems=check_caption(text, sections, request.facts, config),
    )
