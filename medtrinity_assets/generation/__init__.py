"""Caption generation around the MLLM resource: prompt, call cache, parse, check, retry, accounting.

The resource only turns prompts into raw answers (`MLLMResource.generate`); everything that
decides what to ask, whether an answer is usable and what it cost lives here:

- `cache.CallCache`: content-addressed model-call cache in the storage resource (local or S3),
  keyed by image content hash + prompt hash + model id/revision + generation settings; written
  after every batch, so a killed run loses at most one batch and a rerun pays only for what changed;
- `loop.describe`: one `Generation` per `CaptionRequest` (flagged, never dropped);
- `accounting.totals`: tokens, seconds, calls, cache hits, cost per 1k captions, projected GPU-hours.
"""

from .accounting import totals
from .cache import CallCache, call_key
from .loop import CaptionRequest, Generation, GenerationSettings, describe

__all__ = ["CallCache", "CaptionRequest", "Generation", "GenerationSettings", "call_key", "describe", "totals"]
