"""Code versions: what Dagster compares to say which materialisations a change makes stale.

An asset's code version is a digest of
- the source of the stage modules that do its work (``STAGE_MODULES``), of the resource classes it
  uses, and of every project module those import (followed statically, transitively);
- the data files that sit with that code (`data_files`): every non-Python file in the folder of a
  module in that closure and in its sub-folders that are not packages (``captions/data/*.yaml``,
  ``captions/checks/*.yaml``, ``grid/grid.yaml``, ``ingest/modalities.yaml``, the card template...),
  so editing caption wording or the position grid makes the assets that read them stale;
- the configuration it reads (``asset_config``): the corpora file for the knowledge assets, the
  MLLM backend and model for caption batches, the expert-model file for ROIs, the catalog and the
  releases file for releases.

Wiring (``medtrinity_assets/defs/``: metadata, checks, jobs) and settings.py (where values come
from; the values themselves are configuration) are not part of any version: work that changes an
output belongs in a stage package. A source's own catalog entry is part of its
``source_files`` data version (defs/sources.py), so editing one source re-runs only that source.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

from medtrinity_assets import settings

PROJECT_PACKAGES = ("medtrinity_assets", "medtrinity_resources")
WIRING_PACKAGE = "medtrinity_assets.defs"
SETTINGS_MODULE = "medtrinity_assets.settings"  # where values come from: the values count (asset_config), not the code

PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the directory holding both packages


def backend_modules() -> tuple[str, ...]:
    """Every MLLM backend module (they register themselves when imported, so no import names them)."""
    folder = PACKAGE_PARENT / "medtrinity_resources" / "mllm_backends"
    return tuple(sorted(f"medtrinity_resources.mllm_backends.{p.stem}" for p in folder.glob("*.py")))


# The modules whose functions each asset calls; their project imports are followed.
STAGE_MODULES: dict[str, tuple[str, ...]] = {
    "source_manifest": ("medtrinity_assets.stages.sources",),
    "images": ("medtrinity_assets.stages.images",),
    "roi_masks": ("medtrinity_assets.stages.rois",),
    "coarse_captions": ("medtrinity_assets.stages.captions",),
    "knowledge_index": ("medtrinity_assets.knowledge",),
    "retrieval_evaluation": ("medtrinity_assets.knowledge",),
    "retrieved_knowledge": ("medtrinity_assets.stages.knowledge", "medtrinity_assets.knowledge"),
    "caption_batches": ("medtrinity_assets.stages.captions", *backend_modules()),
    "triplets": ("medtrinity_assets.stages.triplets", "medtrinity_assets.stages.judge"),
    "image_duplicates": ("medtrinity_assets.stages.duplicates",),
    "source_rejects": ("medtrinity_assets.stages.rejects",),
    "dataset_release": ("medtrinity_assets.export",),
    "vqa_pairs": ("medtrinity_assets.export",),
    "seed_subset": ("medtrinity_assets.stages.seed",),
    "seed_captions": ("medtrinity_assets.stages.seed_captions", *backend_modules()),
    "seed_finetune_set": ("medtrinity_assets.export.finetune",),
}



@lru_cache(maxsize=None)
def module_path(name: str) -> Path | None:
    """The source file of a project module (a package's __init__.py), None if there is none.
    Found on disk, not imported, so versions cost no imports."""
    if name.split(".")[0] not in PROJECT_PACKAGES:
        return None
    base = PACKAGE_PARENT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=None)
def project_imports(name: str, path: Path) -> frozenset[str]:
    """Project modules that the module `name` (at `path`) imports, relative imports resolved."""
    is_package = path.name == "__init__.py"
    base = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                root = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{root}.{node.module}" if node.module else root
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return frozenset(m for m in found if module_path(m) is not None)


@lru_cache(maxsize=None)
def module_closure(roots: tuple[str, ...]) -> tuple[str, ...]:
    """`roots` and every project module they import, transitively (wiring modules excluded).

    Importing a submodule runs its package's ``__init__``: that file's own source counts, but what
    it re-exports for other callers is followed only when the package itself is imported
    (``stages.common`` importing ``phi.patterns`` must not pull in ``phi``'s ingest screening)."""

    def wiring(name: str) -> bool:
        return name in (WIRING_PACKAGE, SETTINGS_MODULE) or name.startswith(WIRING_PACKAGE + ".")

    followed: set[str] = set()
    parents: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in followed or wiring(name):
            continue
        path = module_path(name)
        if path is None:
            raise ValueError(f"code version: no source for module {name}")
        followed.add(name)
        todo.extend(project_imports(name, path) - followed)
        parent = name.rpartition(".")[0]
        while parent:
            parents.add(parent)
            parent = parent.rpartition(".")[0]
    return tuple(sorted(followed | {p for p in parents if not wiring(p) and module_path(p) is not None}))


@lru_cache(maxsize=None)
def file_digest(name: str) -> str:
    return hashlib.sha256(module_path(name).read_bytes().replace(b"\r\n", b"\n")).hexdigest()  # type: ignore[union-attr]


def source_digest(modules: Iterable[str]) -> str:
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        h.update(f"{name}:{file_digest(name)}\n".encode())
    return h.hexdigest()


def _folder_data(folder: Path) -> list[Path]:
    """Non-Python files of `folder` and of its sub-folders that are not packages (data folders)."""
    found = []
    for p in sorted(folder.iterdir()):
        if p.is_dir() and p.name != "__pycache__" and not (p / "__init__.py").is_file():
            found += _folder_data(p)
        elif p.is_file() and p.suffix not in (".py", ".pyc") and not p.name.startswith("."):
            found.append(p)
    return found


@lru_cache(maxsize=None)
def data_files(closure: tuple[str, ...]) -> tuple[Path, ...]:
    """The data files of the folders of the modules in `closure` (see the module docstring)."""
    folders = {module_path(name).parent for name in closure}  # type: ignore[union-attr]
    return tuple(sorted({p for folder in folders for p in _folder_data(folder)}))


def data_digest(closure: tuple[str, ...]) -> str:
    """Digest of the data files of `closure` (line endings normalised, named relative to the packages)."""
    h = hashlib.sha256()
    for path in data_files(closure):
        content = hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()
        h.update(f"{path.relative_to(PACKAGE_PARENT).as_posix()}:{content}\n".encode())
    return h.hexdigest()


def file_text(path: str) -> str:
    p = Path(path)
    return p.read_text(encoding="utf-8") if p.is_file() else f"<missing {path}>"


def caption_config(backend: str | None = None, model: str | None = None) -> str:
    """What caption_batches depends on beyond code: the MLLM backend and model."""
    backend = backend if backend is not None else settings.env("MEDTRINITY_MLLM_BACKEND", "grounded_composer")
    model = model if model is not None else settings.env("MEDTRINITY_MLLM_MODEL")
    return f"mllm={backend}:{model}"


def seed_caption_config() -> str:
    """What seed_captions depends on beyond code: the seed model (apart from the default captioner's)."""
    return f"seed_mllm={settings.env('MEDTRINITY_SEED_MLLM_BACKEND', 'openai')}:{settings.env('MEDTRINITY_SEED_MLLM_MODEL')}"


def asset_config(name: str, caption: str | None = None) -> str:
    """The configuration an asset reads, as text (part of its code version)."""
    embedder = f"embedder={settings.env('MEDTRINITY_EMBEDDER', 'static')}:{settings.env('MEDTRINITY_EMBEDDER_MODEL')}"
    from medtrinity_assets.knowledge.vocabulary import knowledge_data_file

    concepts = file_text(str(knowledge_data_file("concepts.yaml")))
    if name == "knowledge_index":
        return f"{embedder}\n{file_text(settings.corpora_path())}"
    if name == "retrieval_evaluation":
        evaluation = file_text(str(knowledge_data_file("evaluation/queries.jsonl")))
        return f"{embedder}\n{file_text(settings.corpora_path())}\n{concepts}\n{evaluation}"
    if name == "retrieved_knowledge":
        return f"{embedder}\n{concepts}"
    if name == "caption_batches":
        return caption if caption is not None else caption_config()
    if name == "seed_captions":
        return seed_caption_config()
    if name == "triplets":
        judge = settings.env("MEDTRINITY_JUDGE_MODEL")
        return f"judge={judge}:{settings.env('MEDTRINITY_JUDGE_SAMPLE_PERCENT', '0')}" if judge else ""
    if name == "roi_masks":
        experts = settings.env("MEDTRINITY_EXPERTS")
        return file_text(experts) if experts else "experts=none"
    if name in ("dataset_release", "vqa_pairs"):  # the card's files are data files of the export package
        return f"{file_text(settings.releases_path())}\n{file_text(settings.catalog_path())}"
    return ""


def code_version(name: str, resource_modules: Iterable[str] = (), caption: str | None = None) -> str:
    """12 hex digits over the asset's code closure, the data files beside it and its configuration."""
    if name not in STAGE_MODULES:
        raise KeyError(f"no stage modules declared for asset {name!r} in defs/versions.py")
    closure = module_closure(tuple(sorted({*STAGE_MODULES[name], *resource_modules})))
    h = hashlib.sha256(source_digest(closure).encode())
    h.update(data_digest(closure).encode())
    h.update(asset_config(name, caption).encode())
    return h.hexdigest()[:12]


def resource_modules_of(required: Iterable[str], resources: Mapping[str, object]) -> list[str]:
    """Modules of the resource classes behind the resource keys an asset requires."""
    return sorted({type(resources[k]).__module__ for k in required if k in resources})
