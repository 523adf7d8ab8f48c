"""Records of the knowledge stage: source documents and the chunks that get indexed."""

from __future__ import annotations

from dataclasses import dataclass, field

from medtrinity_assets.records import KnowledgeChunk

MetadataValue = str | int | float | bool


@dataclass(frozen=True)
class Document:
    """One knowledge document as read from a corpus (a disease term, a QA pair, an abstract)."""

    doc_id: str  # stable within its corpus
    title: str
    text: str
    concept_ids: tuple[str, ...] = ()  # normalised: DOID:…, UMLS:C…, MESH:…, NCI:…
    metadata: dict[str, MetadataValue] = field(default_factory=dict)  # scalars only (chromadb)


@dataclass(frozen=True)
class Chunk(KnowledgeChunk):
    """A word window of a document, the unit that is embedded, indexed and retrieved (fields: `KnowledgeChunk`).

    `chunk_id` is ``corpus:doc_id:chunk_no``: stable while the document and chunking settings
    stay the same; `content_hash` changes whenever what is embedded or stored changes.
    """

    @property
    def embedding_text(self) -> str:
        """The text given to the embedder: the chunk, prefixed by its title unless it starts with it."""
        return embedding_text(self.title, self.text)


def embedding_text(title: str, text: str) -> str:
    if not title or text[: len(title)].casefold() == title.casefold():
        return text
    return f"{title}: {text}"
