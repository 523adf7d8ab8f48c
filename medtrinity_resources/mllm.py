"""MLLMResource: multigranular descriptions from the grounded composer, a local model, or an endpoint.

Switching backend is configuration only; `describe` is the same for all:

1. build the versioned prompt from the request's facts (version and hash recorded);
2. ask the backend (the composer writes from the facts; ``transformers`` runs a local
   image-text-to-text model dir on the overlay PNG; ``openai`` calls a chat-completions endpoint);
3. parse the five sections and the integrated description, run `check_caption`;
4. re-ask (up to `max_retries` times, with a note on what was wrong) answers with refusals,
   forbidden phrases, missing sections or too little text, keeping the best attempt;
5. return every request's `Generation` — answers that still have problems are FLAGGED
   (``problems`` non-empty), never dropped.

Extra problem codes besides `check_caption`'s: ``missing_section:description`` (no
``Description:`` block), ``truncated`` (stopped at the token limit), ``backend_error:<code>``
(no answer after transport retries, e.g. ``backend_error:timeout``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import dagster as dg

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
from medtrinity_assets.captions.sections import SECTION_KEYS, description_found, parse_output
from medtrinity_assets.records import CaptionFacts
from medtrinity_resources.mllm_backends.base import MLLMBackendError, RawOutput

#: problem-code prefixes that make `describe` ask again
RETRYABLE_PROBLEMS: tuple[str, ...] = ("refusal", "forbidden_phrase", "missing_section", "too_short")


@dataclass
class CaptionRequest:
    """One description to write: an id (the ROI id), the facts, and the overlay PNG (None: text only)."""

    request_id: str
    facts: CaptionFacts
    image_png: bytes | None = None


@dataclass
class Generation:
    """A written description with everything needed to reproduce and audit it."""

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


def is_retryable(problems: list[str]) -> bool:
    return any(p.split(":")[0] in RETRYABLE_PROBLEMS for p in problems)


def _rank(problems: list[str]) -> tuple[int, int]:
    return (sum(p.split(":")[0] in RETRYABLE_PROBLEMS for p in problems), len(problems))


@dataclass
class _Answer:
    text: str
    sections: dict[str, str]
    problems: list[str]
    prompt_hash: str
    model_version: str


def judge(raw: RawOutput, facts: CaptionFacts, config: CaptionCheckConfig) -> _Answer:
    """Parse and check one backend answer."""
    if raw.error:
        return _Answer("", {k: "" for k in SECTION_KEYS}, [f"backend_error:{raw.error}"], "", raw.model_version)
    text, sections = parse_output(raw.text)
    problems = check_caption(text, sections, facts, config)
    if not description_found(raw.text):
        problems.append("missing_section:description")
    if raw.truncated:
        problems.append("truncated")
    return _Answer(text, sections, problems, "", raw.model_version)


class MLLMResource(dg.ConfigurableResource):
    """Writes multigranular descriptions; backend chosen by configuration."""

    backend: Literal["grounded_composer", "transformers", "openai"] = "grounded_composer"
    model_path: str = ""  # local HF model dir (transformers)
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
    dtype: str = "float32"  # float32 | bfloat16 | float16 | auto
    batch_size: int = 4
    max_new_tokens: int = 384
    temperature: float = 0.0  # 0 = greedy (deterministic)
    seed: int = 0  # sampling seed when temperature > 0
    endpoint_url: str = ""  # openai: http://host:8000/v1
    model_name: str = ""  # openai: served model id
    api_key_env: str = "OPENAI_API_KEY"  # env var holding the key; absent is fine for local servers
    max_concurrency: int = 4
    timeout_s: float = 120.0
    max_retries: int = 3  # re-asks of unusable answers, and transport retries per request
    retry_backoff_s: float = 1.0  # first transport backoff; doubles per retry
    min_words: int = 25
    max_words: int = 400

    # ------------------------------------------------------------------ plumbing

    def check_config(self) -> CaptionCheckConfig:
        return CaptionCheckConfig(min_words=self.min_words, max_words=self.max_words)

    def _backend(self):
        if self.backend == "transformers":
            from medtrinity_resources.mllm_backends.hf import TransformersBackend

            return TransformersBackend(
                self.model_path,
                self.device,
                self.dtype,
                self.batch_size,
                self.max_new_tokens,
                self.temperature,
                self.seed,
            )
        if self.backend == "openai":
            from medtrinity_resources.mllm_backends.openai_compat import OpenAICompatBackend

            return OpenAICompatBackend(
                self.endpoint_url,
                self.model_name,
                self.api_key_env,
                self.max_new_tokens,
                self.temperature,
                self.max_concurrency,
                self.timeout_s,
                self.max_retries,
                self.retry_backoff_s,
            )
        raise MLLMBackendError(f"backend {self.backend!r} does not call a model")

    # ------------------------------------------------------------------ public API

    def describe(self, requests: list[CaptionRequest]) -> list[Generation]:
        """One Generation per request, same order; problems flagged, nothing dropped."""
        if not requests:
            return []
        config = self.check_config()
        prompts = [build_prompt(r.facts) for r in requests]
        hashes = [prompt_hash(p) for p in prompts]
        if self.backend == "grounded_composer":
            return [self._compose(r, h, config) for r, h in zip(requests, hashes, strict=True)]
        backend = self._backend()
        best: list[_Answer | None] = [None] * len(requests)
        attempts = [0] * len(requests)
        tokens = [[0, 0] for _ in requests]
        asked = list(prompts)
        pending = list(range(len(requests)))
        for round_ in range(self.max_retries + 1):
            outs = backend.generate([asked[i] for i in pending], [requests[i].image_png for i in pending])
            again = []
            for i, raw in zip(pending, outs, strict=True):
                attempts[i] += 1
                tokens[i][0] += raw.tokens_in
                tokens[i][1] += raw.tokens_out
                answer = judge(raw, requests[i].facts, config)
                answer.prompt_hash = prompt_hash(asked[i])
                if best[i] is None or _rank(answer.problems) < _rank(best[i].problems):
                    best[i] = answer
                if is_retryable(answer.problems) and round_ < self.max_retries:
                    asked[i] = retry_prompt(prompts[i], answer.problems)
                    again.append(i)
            pending = again
            if not pending:
                break
        generations = []
        for i, request in enumerate(requests):
            answer = best[i]
            settings = dict(backend.settings)
            if answer.prompt_hash != hashes[i]:
                settings["answer_prompt_hash"] = answer.prompt_hash  # the retry prompt that produced it
            generations.append(
                Generation(
                    request_id=request.request_id,
                    text=answer.text,
                    sections=answer.sections,
                    backend=self.backend,
                    model=backend.model,
                    model_version=answer.model_version or backend.model_version,
                    prompt_version=PROMPT_VERSION,
                    prompt_hash=hashes[i],
                    settings=settings,
                    attempts=attempts[i],
                    problems=answer.problems,
                    tokens_in=tokens[i][0],
                    tokens_out=tokens[i][1],
                )
            )
        return generations

    def describe_text(self, prompts: list[str]) -> list[str]:
        """Plain text answers to text-only prompts (no checks); needs a model backend.

        A prompt that got no answer after transport retries gets ``""`` (callers fall back);
        `MLLMBackendError` only when none got an answer.
        """
        if not prompts:
            return []
        if self.backend == "grounded_composer":
            raise MLLMBackendError(
                "describe_text needs a model: configure backend 'transformers' or 'openai' "
                "(the grounded composer only writes captions from facts)"
            )
        outs = self._backend().generate(list(prompts), [None] * len(prompts))
        if all(o.error for o in outs):
            raise MLLMBackendError(f"none of {len(prompts)} prompts got an answer ({outs[0].error})")
        return [o.text if not o.error else "" for o in outs]

    # ------------------------------------------------------------------ composer

    def _compose(self, request: CaptionRequest, hash_: str, config: CaptionCheckConfig) -> Generation:
        text, sections = compose_caption(request.facts, seed=request.request_id)
        return Generation(
            request_id=request.request_id,
            text=text,
            sections=sections,
            backend="grounded_composer",
            model="grounded_composer",
            model_version=COMPOSER_VERSION,
            prompt_version=PROMPT_VERSION,
            prompt_hash=hash_,
            settings={"composer_version": COMPOSER_VERSION, "seed": request.request_id, "deterministic": True},
            attempts=1,
            problems=check_caption(text, sections, request.facts, config),
        )
