"""CaptionJudgeResource: a second model, behind an OpenAI-compatible endpoint, that answers judge prompts.

A thin client: `enabled` says whether a sample is configured, `answer(prompts)` returns one
`RawOutput` per prompt (transport retries and backoff are the openai backend's). What is asked and
how the answer is read live in `medtrinity_assets.captions.checks.judge`.
"""

from __future__ import annotations

import dagster as dg

from medtrinity_resources.mllm_backends.base import MLLMBackendError, RawOutput


class CaptionJudgeResource(dg.ConfigurableResource):
    """Scores a sample of captions for faithfulness to their facts (off unless configured)."""

    endpoint_url: str = ""  # http://host:8000/v1
    model_name: str = ""  # served model id
    api_key_env: str = "OPENAI_API_KEY"
    sample_percent: int = 0  # share of records judged (0 = judge off, 100 = all), chosen by record id
    min_score: float = 0.5  # a score below this is a disagreement (record quarantined)
    max_new_tokens: int = 200
    max_concurrency: int = 4
    timeout_s: float = 120.0
    max_retries: int = 3
    retry_backoff_s: float = 1.0

    @property
    def enabled(self) -> bool:
        return self.sample_percent > 0 and bool(self.endpoint_url.strip()) and bool(self.model_name.strip())

    def answer(self, prompts: list[str]) -> list[RawOutput]:
        """The judge model's answer to each prompt (greedy), same order; failures as RawOutput.error."""
        from medtrinity_resources.mllm import MLLMResource

        if not prompts:
            return []
        client = MLLMResource(
            backend="openai",
            endpoint_url=self.endpoint_url,
            model_name=self.model_name,
            api_key_env=self.api_key_env,
            max_new_tokens=self.max_new_tokens,
            temperature=0.0,
            max_concurrency=self.max_concurrency,
            timeout_s=self.timeout_s,
            transport_retries=self.max_retries,
            retry_backoff_s=self.retry_backoff_s,
            structured_output=False,
        )
        outs = client.generate(list(prompts), [None] * len(prompts))
        refused = {o.error for o in outs if o.error and o.error.startswith("http_4")}
        if refused and all(o.error for o in outs):  # every request refused: the judge is misconfigured
            code = sorted(refused)[0].removeprefix("http_")
            raise MLLMBackendError(f"the caption judge at {self.endpoint_url} refused every request (HTTP {code}): check MEDTRINITY_JUDGE_*")
        return outs
