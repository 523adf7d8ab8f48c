"""PubMed baseline/update XML adapter (a file or a folder of ``*.xml[.gz]``)."""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

from medtrinity_assets.knowledge.concepts import unique_concepts
from medtrinity_assets.knowledge.corpus_io import clean_text, scalar_metadata
from medtrinity_assets.knowledge.documents import Document
from medtrinity_assets.records import RejectError

def pubmed_xml_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.glob("*") if p.name.endswith((".xml", ".xml.gz")))
    if not files:
        raise RejectError("corpus_file_missing", f"{path}: no *.xml or *.xml.gz files")
    return files


def element_text(element: ElementTree.Element | None) -> str:
    return clean_text("".join(element.itertext())) if element is not None else ""


def pubmed_article_document(article: ElementTree.Element) -> Document | None:
    """A PubmedArticle element -> Document (None when it has no PMID or no abstract)."""
    citation = article.find("MedlineCitation")
    if citation is None:
        return None
    pmid = element_text(citation.find("PMID"))
    abstract_parts = []
    for part in citation.iterfind("Article/Abstract/AbstractText"):
        text = element_text(part)
        label = part.get("Label")
        if text:
            abstract_parts.append(f"{label.capitalize()}: {text}" if label else text)
    if not pmid or not abstract_parts:
        return None
    mesh_names, mesh_ids = [], []
    for heading in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName"):
        if element_text(heading):
            mesh_names.append(element_text(heading))
        if heading.get("UI"):
            mesh_ids.append(heading.get("UI", ""))
    year = element_text(citation.find("Article/Journal/JournalIssue/PubDate/Year"))
    return Document(
        doc_id=pmid,
        title=element_text(citation.find("Article/ArticleTitle")),
        text=" ".join(abstract_parts),
        concept_ids=unique_concepts([*(f"MESH:{u}" for u in mesh_ids), *(f"MESH:{n}" for n in mesh_names)]),
        metadata=scalar_metadata(
            {
                "pmid": pmid,
                "year": year,
                "journal": element_text(citation.find("Article/Journal/Title")),
                "mesh_terms": mesh_names,
            }
        ),
    )


def iter_pubmed_xml(path: Path, skipped: Counter[str] | None = None) -> Iterator[Document]:
    """PubMed baseline/update XML (file or folder of ``*.xml[.gz]``): PubmedArticle with an abstract."""
    for file in pubmed_xml_files(path):
        opener = gzip.open if file.suffix == ".gz" else open
        try:
            with opener(file, "rb") as fh:
                for _, element in ElementTree.iterparse(fh, events=("end",)):
                    if element.tag != "PubmedArticle":
                        continue
                    doc = pubmed_article_document(element)
                    element.clear()
                    if doc is not None:
                        yield doc
                    elif skipped is not None:
                        skipped["empty_text"] += 1
        except (ElementTree.ParseError, OSError, EOFError) as exc:
            raise RejectError("bad_corpus_file", f"{file}: not readable PubMed XML ({exc})") from None
