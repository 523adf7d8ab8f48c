"""What every MLLM backend returns for one prompt."""

from __future__ import annotations

from dataclasses import dataclass


class MLLMBackendError(RuntimeError):
    """A backend cannot serve at all (bad configuration, unreachable endpoint, 4xx answer)."""


@dataclass
class RawOutput:
    """One model answer (or the error that prevented it, after transport retries)."""

    text: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    truncated: bool = False  # stopped at the token limit
    error: str = ""  # short code, e.g. "timeout", "http_503"; "" when the answer arrived
    model_version: str = ""  # model revision (served: model id and system fingerprint per answer)
    detail: str = ""  # the server's words for an error (e.g. the 400 body), kept for the record
