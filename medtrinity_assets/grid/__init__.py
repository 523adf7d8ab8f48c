"""The position grid, one data file (``grid/grid.yaml``) validated once and cached.

The image (as displayed) is cut into equal bands: rows from the top, columns from the image left.
An ROI's cell is the (row, col) holding its box centre; each band has a name (the ``position``
column writes ``"<row name> <column name>"``) and the image side it lies on (rows
upper | middle | lower, columns left | center | right). Every grid-shaped reader asks this module:

- `position_grid()`                 the loaded `Grid` (cached; `load_grid(path)` reads another file)
- `Grid.cell_at(fx, fy)`            (row, col) of a point given as fractions of width and height
- `Grid.sides(row, col)`            (vertical, horizontal) side of a cell, e.g. ("upper", "center")
- `Grid.named_sides(row, col)`      the sides a cell names in words (None for the middle band)
- `Grid.near_centre(col)`           a side column next to the centre line ("left of centre")
- `Grid.phrase(row, col)` / `Grid.cell_of_phrase(text)`  the ``position`` column's name of a cell
- `Grid.n_rows`, `Grid.n_cols`, `Grid.cells`, `Grid.vocabulary()`

A broken file fails with a `GridDataError` naming the file and the field.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medtrinity_resources.yaml_config import read_yaml_mapping, validate_config

GRID_FILE = Path(__file__).resolve().parent / "grid.yaml"

VerticalSide = Literal["upper", "middle", "lower"]
HorizontalSide = Literal["left", "center", "right"]
_ORDER = {"upper": 0, "middle": 1, "lower": 2, "left": 0, "center": 1, "right": 2}
_MIDDLE = ("middle", "center")


class GridDataError(ValueError):
    """A grid data file that cannot be used."""


class _Band(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^\S+$")  # one word: phrases are "<row> <column>"


class Row(_Band):
    side: VerticalSide


class Column(_Band):
    side: HorizontalSide
    near_centre: bool = False


def _check_axis(bands: tuple[_Band, ...], axis: str) -> tuple[_Band, ...]:
    names = [b.name for b in bands]
    if len(set(names)) != len(names):
        raise ValueError(f"{axis} names must be unique, got {names}")
    order = [_ORDER[b.side] for b in bands]  # type: ignore[attr-defined]
    if order != sorted(order):
        raise ValueError(f"{axis} sides must run {'upper, middle, lower' if axis == 'row' else 'left, center, right'} in order")
    return bands


class Grid(BaseModel):
    """Rows top to bottom, columns image left to right (see grid.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: tuple[Row, ...] = Field(min_length=1)
    columns: tuple[Column, ...] = Field(min_length=1)

    @field_validator("rows")
    @classmethod
    def _rows(cls, v: tuple[Row, ...]) -> tuple[Row, ...]:
        return _check_axis(v, "row")  # type: ignore[return-value]

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: tuple[Column, ...]) -> tuple[Column, ...]:
        return _check_axis(v, "column")  # type: ignore[return-value]

    @model_validator(mode="after")
    def _near_centre_has_side(self) -> Grid:
        for c in self.columns:
            if c.near_centre and c.side == "center":
                raise ValueError(f"column {c.name!r}: near_centre needs a left or right side")
        return self

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def n_cols(self) -> int:
        return len(self.columns)

    @property
    def cells(self) -> int:
        return self.n_rows * self.n_cols

    @staticmethod
    def band(fraction: float, n: int) -> int:
        """Index 0..n-1 of the equal band holding `fraction` (0..1; values outside are clamped)."""
        return min(max(int(fraction * n), 0), n - 1)

    def cell_at(self, fx: float, fy: float) -> tuple[int, int]:
        """(row, col) of the point at fractions (fx of the width, fy of the height)."""
        return self.band(fy, self.n_rows), self.band(fx, self.n_cols)

    def sides(self, row: int, col: int) -> tuple[str, str]:
        """(vertical, horizontal) image side of a cell: upper|middle|lower, left|center|right."""
        return self.rows[row].side, self.columns[col].side

    def named_sides(self, row: int, col: int) -> tuple[str | None, str | None]:
        """The sides a cell names in words: as `sides`, None for the middle row / centre column."""
        v, h = self.sides(row, col)
        return (None if v in _MIDDLE else v), (None if h in _MIDDLE else h)

    def near_centre(self, col: int) -> bool:
        return self.columns[col].near_centre

    def phrase(self, row: int, col: int) -> str:
        """The ``position`` column's name of a cell, e.g. ``"upper left-center"``."""
        return f"{self.rows[row].name} {self.columns[col].name}"

    def cell_of_phrase(self, text: str | None) -> tuple[int, int] | None:
        """The cell a ``position`` phrase names exactly (spacing and case aside), else None."""
        words = (text or "").lower().split()
        if len(words) != 2:
            return None
        row = next((i for i, r in enumerate(self.rows) if r.name.lower() == words[0]), None)
        col = next((i for i, c in enumerate(self.columns) if c.name.lower() == words[1]), None)
        return None if row is None or col is None else (row, col)

    def vocabulary(self) -> dict[str, tuple[str, ...]]:
        """The names the ``position`` column can hold: row names, column names, phrases."""
        return {
            "vertical": tuple(r.name for r in self.rows),
            "horizontal": tuple(c.name for c in self.columns),
            "phrases": tuple(self.phrase(r, c) for r in range(self.n_rows) for c in range(self.n_cols)),
        }


def load_grid(path: str | Path | None = None) -> Grid:
    """The grid of `path` (default ``grid/grid.yaml``), validated (GridDataError on any problem)."""
    p = Path(path) if path is not None else GRID_FILE
    raw = read_yaml_mapping(p, "position grid", GridDataError)
    return validate_config(Grid, raw, raw, GridDataError, {"rows": "row", "columns": "column"}, top="file", prefix=f"{p}: ")  # type: ignore[return-value]


@lru_cache(maxsize=None)
def position_grid() -> Grid:
    """The project's position grid (``GRID_FILE``), loaded once."""
    return load_grid(GRID_FILE)
