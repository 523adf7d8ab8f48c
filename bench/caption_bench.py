"""Caption throughput: generation.describe (over MLLMResource) vs a bare batched model.generate on the same model.

    python bench/caption_bench.py [--device cpu|cuda] [--n 16] [--batch-size 4] [--max-new-tokens 32]

A tiny random model of ``--family`` (default llava; see tests/tiny_vlms.py) is built on the fly (no
download). Both paths get the same prompts, the same overlay images, the same batch size and
max_new_tokens, greedy decoding:

- bare:     chat template + processor + model.generate + batch_decode, batches in request order
            (and, to isolate describe's overhead, in the same length-sorted batches describe forms);
- describe: MLLMResource(backend="transformers").describe — prompt building, batching, parsing,
            checks — with max_retries=0 so both do one pass (a random model's answers would
            otherwise all be re-asked).

Timings are the fastest of --repeats interleaved runs. Prints captions/s and the ratios
describe/bare (goal >= 0.9), then the grounded
composer's captions/s through describe and as a bare compose_caption loop.

Served path (``--served-n``, default 1024, at ``--concurrency`` 256, ``--served-repeats`` 7): a local
chat-completions server in its own process (`served_baseline.py`: raw asyncio protocol, uvloop when installed) that answers
instantly; bare = one aiohttp session posting the same payloads (built per run, base64 image included)
behind a semaphore of the same size, answers JSON-decoded — once as ``json.dumps`` of the payload,
once as the very bytes our client sends (image spliced in), which isolates the client's own cost —
vs ``MLLMResource.generate`` over the
``openai`` backend (our client: loop thread, retries, parsing) and generation.describe (prompt, parse,
checks; no cache). Prints median requests/s, the median client overhead (generate/bare - 1; goal
<= 5%) with every repeat's figure, and the server's CPU share during the bare runs (below 100%: the
server is not the bottleneck). ``--httpx`` also times httpx.AsyncClient once.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from pathlib import Path

import _common  # noqa: E402

_common.setup(offline=True, tests=True)  # tests/: the tiny VLM builders

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from medtrinity_assets.captions import (  # noqa: E402
    CaptionCheckConfig,
    build_prompt,
    check_caption,
    compose_caption,
    format_sections,
    parse_output,
    prompt_hash,
)
from medtrinity_assets.captions.examples import EXAMPLES  # noqa: E402
from medtrinity_assets.generation import CaptionRequest, GenerationSettings, describe  # noqa: E402
from medtrinity_resources.mllm import MLLMResource  # noqa: E402
from medtrinity_resources.mllm_backends.hf import chat_text, decode_image, load_model  # noqa: E402
from tiny_vlms import FAMILIES  # noqa: E402


def overlay_png(rng: np.random.Generator, size: int = 256) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def make_requests(n: int, seed: int = 0) -> list[CaptionRequest]:
    rng = np.random.default_rng(seed)
    makers = [EXAMPLES[k] for k in sorted(EXAMPLES)]
    return [CaptionRequest(f"roi-{i:05d}", makers[i % len(makers)](), overlay_png(rng)) for i in range(n)]


def bare_generate(loaded, requests: list[CaptionRequest], batch_size: int, max_new_tokens: int, sort: bool) -> int:
    """Baseline: the same prompts through the processor and model.generate, in request order
    or (sort=True) in the length-sorted batches describe forms."""
    import torch

    n_tokens = 0
    if sort:
        requests = sorted(requests, key=lambda r: -len(build_prompt(r.facts)))
    for k in range(0, len(requests), batch_size):
        batch = requests[k : k + batch_size]
        texts = [chat_text(loaded.processor, build_prompt(r.facts), with_image=True) for r in batch]
        images = [[decode_image(r.image_png)] for r in batch]  # one image per sample, as the backend sends them
        inputs = loaded.processor(text=texts, images=images, return_tensors="pt", padding=True)
        inputs = {key: v.to(loaded.device) for key, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(loaded.model.dtype)
        with torch.inference_mode():
            out = loaded.model.generate(
                **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=loaded.pad_id
            )
        loaded.processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        n_tokens += int(out.shape[0] * (out.shape[1] - inputs["input_ids"].shape[1]))
    return n_tokens


def describe_own_work(requests: list[CaptionRequest], answers: list[str]) -> None:
    """What describe does per caption besides generating: prompt + hash, parse, check."""
    config = CaptionCheckConfig()
    for request, answer in zip(requests, answers, strict=True):
        prompt_hash(build_prompt(request.facts))
        text, sections = parse_output(answer)
        check_caption(text, sections, request.facts, config)


def timed(fn, repeats: int) -> float:
    """Fastest of `repeats` runs after one warm-up (the minimum is least disturbed by other load)."""
    return interleaved({"fn": fn}, repeats)["fn"]


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Fastest seconds per function, runs alternated so that load changes hit all alike."""
    for fn in fns.values():
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def served_overhead(n: int, concurrency: int, repeats: int, with_httpx: bool) -> None:
    """Our client (MLLMResource.generate) and the caption loop vs a bare aiohttp baseline, same payloads."""
    import statistics

    import psutil

    import json

    from served_baseline import BareAiohttp, bare_httpx_async, instant_server

    from medtrinity_resources.mllm_backends.openai_compat import IMAGE_SLOT, chat_payload, request_body

    requests = make_requests(n)
    answer = format_sections(*reversed(compose_caption(requests[0].facts, seed="bench")))
    server, url = instant_server(answer)
    server_ps = psutil.Process(server.pid)
    mllm = MLLMResource(backend="openai", endpoint_url=url, model_name="bench", max_concurrency=concurrency, max_new_tokens=1024)
    prompts = [build_prompt(r.facts) for r in requests]
    images = [r.image_png for r in requests]
    bare = BareAiohttp(url, concurrency)

    def payloads():  # built per run, as the client does (base64 of the overlay included)
        return [chat_payload("bench", p, img, 1024, 0.0, 0) for p, img in zip(prompts, images, strict=True)]

    def json_body(prompt: str, img: bytes) -> bytes:  # the plain way: json.dumps of the whole payload
        return json.dumps(chat_payload("bench", prompt, img, 1024, 0.0, 0)).encode()

    def same_body(prompt: str, img: bytes) -> bytes:  # the bytes our client sends, built as it builds them
        return request_body(chat_payload("bench", prompt, img, 1024, 0.0, 0, IMAGE_SLOT), img)

    items = list(zip(prompts, images, strict=True))

    one_pass = GenerationSettings(max_retries=0)
    fns = {
        "bare": lambda: bare.run(json_body, items),
        "bare_same_body": lambda: bare.run(same_body, items),
        "generate": lambda: mllm.generate(prompts, images, 1024),
        "describe": lambda: describe(mllm, requests, settings=one_pass),
    }
    for fn in fns.values():  # warm-up: connections open, imports done
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    server_busy: list[float] = []
    for k in range(repeats):
        names = list(fns)[k % len(fns) :] + list(fns)[: k % len(fns)]  # rotate the order so load drift hits all alike
        for name in names:
            cpu0, t0 = sum(server_ps.cpu_times()[:2]), time.perf_counter()
            fns[name]()
            wall = time.perf_counter() - t0
            seconds[name].append(wall)
            if name == "bare":
                server_busy.append((sum(server_ps.cpu_times()[:2]) - cpu0) / wall)
    httpx_s = None
    if with_httpx:
        t0 = time.perf_counter()
        bare_httpx_async(url, concurrency, payloads)
        httpx_s = time.perf_counter() - t0
    bare.close()
    server.kill()
    server.wait()

    ratio = [g / b for g, b in zip(seconds["generate"], seconds["bare"], strict=True)]
    same_ratio = [g / b for g, b in zip(seconds["generate"], seconds["bare_same_body"], strict=True)]
    loop_ratio = [d / b for d, b in zip(seconds["describe"], seconds["bare"], strict=True)]
    med = {name: statistics.median(v) for name, v in seconds.items()}
    print(f"served, instant local server (own process), n={n}, concurrency={concurrency}, {repeats} repeats (median):")
    print(f"  server CPU busy during the bare runs: median {statistics.median(server_busy):.0%} of wall time (<100%: not the bottleneck)")
    print(f"  bare aiohttp, json.dumps(payload)    : {n / med['bare']:8.0f} requests/s")
    print(f"  bare aiohttp, our request bytes      : {n / med['bare_same_body']:8.0f} requests/s")
    print(f"  MLLMResource.generate (our client)   : {n / med['generate']:8.0f} requests/s")
    print(f"  generation.describe (+prompt, parse, checks, waves): {n / med['describe']:8.0f} captions/s")
    if httpx_s is not None:
        print(f"  bare httpx.AsyncClient (one run)     : {n / httpx_s:8.0f} requests/s")
    for label, r, base in (("generate/bare", ratio, "bare"), ("generate/bare same bytes", same_ratio, "bare_same_body")):
        print(
            f"  client overhead {label} - 1 = {statistics.median(r) - 1:+.1%} median, "
            f"{min(seconds['generate']) / min(seconds[base]) - 1:+.1%} fastest vs fastest "
            f"(per repeat {', '.join(f'{x - 1:+.1%}' for x in r)}; goal <= 5%)"
        )
    print(f"  loop overhead     describe/bare - 1 = {statistics.median(loop_ratio) - 1:+.1%} median")


def main() -> None:
    ap = _common.parser(__doc__)
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--n", type=int, default=16, help="caption requests per run")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--family", default="llava", choices=sorted(FAMILIES), help="tiny model family (tests/tiny_vlms.py)")
    ap.add_argument("--hidden", type=int, default=64, help="tiny model hidden size")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--composer-n", type=int, default=2000)
    ap.add_argument("--served-n", type=int, default=1024, help="requests of the served-path run (0: skip)")
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--served-repeats", type=int, default=7, help="repeats of the served-path comparison")
    ap.add_argument("--httpx", action="store_true", help="also time a bare httpx.AsyncClient baseline once")
    ap.add_argument("--served-only", action="store_true", help="only the served-path comparison")
    args = ap.parse_args()
    if args.served_n:
        served_overhead(args.served_n, args.concurrency, args.served_repeats, args.httpx)
    if args.served_only:
        return

    transformers_vs_bare(args)
    composer_vs_bare(args.composer_n)


def transformers_vs_bare(args) -> None:
    """The caption loop on a tiny model of --family vs bare batched generate (same prompts, images, batches)."""
    import torch

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        heads = 2 if args.family == "llava" else max(2, args.hidden // 16)  # Qwen's M-RoPE sections fit head_dim 16
        model_dir = str(FAMILIES[args.family].build(Path(tmp) / args.family, hidden=args.hidden, layers=args.layers, heads=heads))
        print(f"built tiny {args.family} (hidden={args.hidden}, layers={args.layers}) in {time.perf_counter() - t0:.1f}s")
        requests = make_requests(args.n)
        mllm = MLLMResource(
            backend="transformers",
            model_path=model_dir,
            device=args.device,
            dtype=args.dtype,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            truncation_max_new_tokens=args.max_new_tokens,  # one pass, like the bare loop
        )
        one_pass = GenerationSettings(max_retries=0)
        loaded = load_model(model_dir, args.device, args.dtype)
        gens = describe(mllm, requests, settings=one_pass)
        print(
            f"describe: {len(gens)} generations, flagged {sum(bool(g.problems) for g in gens)} (random weights), "
            f"tokens_out {sum(g.tokens_out for g in gens)}"
        )

        best = interleaved(
            {
                "bare": lambda: bare_generate(loaded, requests, args.batch_size, args.max_new_tokens, sort=False),
                "bare_sorted": lambda: bare_generate(loaded, requests, args.batch_size, args.max_new_tokens, sort=True),
                "describe": lambda: describe(mllm, requests, settings=one_pass),
            },
            args.repeats,
        )
        rate = {name: args.n / seconds for name, seconds in best.items()}
        print(f"device={loaded.device} n={args.n} batch_size={args.batch_size} max_new_tokens={args.max_new_tokens}")
        print(f"bare model.generate, request order  : {rate['bare']:8.2f} captions/s ({best['bare']:.3f}s)")
        print(
            f"bare model.generate, length-sorted  : {rate['bare_sorted']:8.2f} captions/s ({best['bare_sorted']:.3f}s)"
        )
        print(f"generation.describe                 : {rate['describe']:8.2f} captions/s ({best['describe']:.3f}s)")
        print(f"ratio describe/bare                 = {rate['describe'] / rate['bare']:.3f}  (goal >= 0.9)")
        print(f"ratio describe/bare (same batches)  = {rate['describe'] / rate['bare_sorted']:.3f}  (overhead only)")
        # describe's own work besides generating (prompt, parsing, checks), timed alone: a load-robust bound
        # answers as long as a good model's (the composer's, in the answer format), not the random model's
        answers = [format_sections(*compose_caption(r.facts, seed=r.request_id)[::-1]) for r in requests]
        own_s = timed(lambda: describe_own_work(requests, answers), args.repeats)
        gen_ms = 1000 * best["bare_sorted"] / args.n
        own_ms = 1000 * own_s / args.n
        print(
            f"describe's own work: {own_ms:.2f} ms/caption vs {gen_ms:.1f} ms/caption generating "
            f"-> ratio bound {gen_ms / (gen_ms + own_ms):.3f}"
        )



def composer_vs_bare(composer_n: int) -> None:
    """The grounded composer through describe vs a bare compose_caption loop."""
    facts_requests = [CaptionRequest(r.request_id, r.facts, None) for r in make_requests(min(composer_n, 64))]
    facts_requests = (facts_requests * (composer_n // len(facts_requests) + 1))[: composer_n]
    facts_requests = [CaptionRequest(f"roi-{i}", r.facts, None) for i, r in enumerate(facts_requests)]
    composer = MLLMResource()
    best = interleaved(
        {
            "bare": lambda: [compose_caption(r.facts, seed=r.request_id) for r in facts_requests],
            "describe": lambda: describe(composer, facts_requests),
        },
        2,
    )
    bare_compose_s, compose_s = best["bare"], best["describe"]
    print(f"grounded composer, bare compose_caption: {len(facts_requests) / bare_compose_s:8.0f} captions/s")
    print(
        f"grounded composer via describe (prompt hash + checks): {len(facts_requests) / compose_s:8.0f} captions/s "
        f"(ratio {bare_compose_s / compose_s:.2f})"
    )


if __name__ == "__main__":
    main()
