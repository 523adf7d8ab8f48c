"""Derive uberon_terms.jsonl.gz (the anatomy corpus) from files of an UBERON checkout.

  python make_uberon_subset.py <uberon checkout> uberon_terms.jsonl.gz

Reads subsets/efo-slim.obo (every term: the human-relevant slim UBERON curates for EFO) and
musculoskeletal.obo + subsets/appendicular-ext.obo (only the terms named in EXTRA_NAMES, which
the slim lacks). Keeps per term: id, name, definition (citation brackets removed), EXACT and
RELATED-non-plural synonyms, UMLS/MESH/NCIT xrefs, is_a parent ids. Terms in EXTRA_IDS that no
readable file defines are written with their label only (no definition: no passage is made).
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

EXTRA_NAMES = {
    "gallbladder", "nerve", "gluteus maximus", "costal cartilage", "left lung", "right lung", "hip",
    "cardiac atrium", "cardiac ventricle", "vertebral column", "intervertebral disk",
}
# labels from UBERON's reports/stages-human-report.tsv for terms whose stanzas are only in the
# full ontology file (too large for the snapshot tool)
EXTRA_IDS = {
    "UBERON:0002369": "adrenal gland",
    "UBERON:0001233": "right adrenal gland",
    "UBERON:0001234": "left adrenal gland",
    "UBERON:0004538": "left kidney",
    "UBERON:0004539": "right kidney",
    "UBERON:0001639": "hepatic portal vein",
    "UBERON:0003713": "splenic vein",
    "UBERON:0001999": "iliopsoas",
    "UBERON:0002462": "erector spinae muscle group",
    "UBERON:0001072": "posterior vena cava",
    "UBERON:0004087": "vena cava",
    "UBERON:0001272": "innominate bone",  # the hip bone of TotalSegmentator / SAM-Med2D "hip_left/right" labels
}
_SYN = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+(EXACT|RELATED|NARROW|BROAD)\b(.*)$')
_DEF = re.compile(r'^"((?:[^"\\]|\\.)*)"')
_CITE = re.compile(r"\s*\[[^\]]*\]\s*(?=\.?$)")


def stanzas(path: Path):
    text = path.read_text(encoding="utf-8", errors="replace")
    for block in text.split("\n[Term]\n")[1:]:
        block = block.split("\n[", 1)[0]
        term: dict = {"synonyms": [], "xrefs": [], "parents": []}
        for line in block.splitlines():
            tag, _, value = line.partition(": ")
            if tag == "id":
                term["id"] = value.strip()
            elif tag == "name":
                term["name"] = value.strip()
            elif tag == "def":
                m = _DEF.match(value)
                if m:
                    term["definition"] = _CITE.sub("", m.group(1).replace('\\"', '"')).strip()
            elif tag == "synonym":
                m = _SYN.match(value)
                if m and (m.group(2) == "EXACT" or (m.group(2) == "RELATED" and "PLURAL" not in m.group(3))):
                    term["synonyms"].append(m.group(1))
            elif tag == "xref":
                x = value.split()[0] if value.split() else ""
                if x.startswith(("UMLS:", "MESH:", "NCIT:")):
                    term["xrefs"].append(x)
            elif tag == "is_a":
                term["parents"].append(value.split()[0])
            elif tag == "is_obsolete" and value.strip() == "true":
                term["obsolete"] = True
        if term.get("id", "").startswith("UBERON:") and term.get("name") and not term.get("obsolete"):
            yield term


def main(root: Path, out: Path) -> None:
    terms: dict[str, dict] = {}
    for t in stanzas(root / "subsets" / "efo-slim.obo"):
        terms[t["id"]] = t
    for name in ("musculoskeletal.obo", "subsets/appendicular-ext.obo"):
        for t in stanzas(root / name):
            if t["name"] in EXTRA_NAMES and t["id"] not in terms:
                terms[t["id"]] = t
    for tid, name in EXTRA_IDS.items():
        terms.setdefault(tid, {"id": tid, "name": name, "synonyms": [], "xrefs": [], "parents": []})
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        for tid in sorted(terms):
            t = terms[tid]
            rec = {k: t.get(k) for k in ("id", "name", "definition", "synonyms", "xrefs", "parents") if t.get(k)}
            fh.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(terms)} terms, {sum(1 for t in terms.values() if t.get('definition'))} with a definition -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
