"""The position grid is one data file (grid/grid.yaml): cells, names, sides, wording, VQA and side
checks all follow it. A 3 x 3 grid and a 2 x 4 grid loaded from temporary files show it."""

from __future__ import annotations

import pytest

from medtrinity_assets import grid as grid_module
from medtrinity_assets.captions.checks.judge import fact_lines
from medtrinity_assets.captions.checks.sides import image_side_facts, patient_side_fact, side_contradiction
from medtrinity_assets.captions.groups_text import spread_words
from medtrinity_assets.captions.labels import image_place
from medtrinity_assets.captions.vocab import parse_position_words
from medtrinity_assets.export.vqa import image_location, roi_questions
from medtrinity_assets.export.vqa_model import validate_pair
from medtrinity_assets.grid import GridDataError, load_grid, position_grid
from medtrinity_assets.records import CaptionFacts, DisplayFrame, GridPosition, Measurements
from medtrinity_assets.rois.position import grid_cell, grid_position, position_phrase

THREE = """
rows: [{name: high, side: upper}, {name: mid, side: middle}, {name: low, side: lower}]
columns: [{name: left, side: left}, {name: centre, side: center}, {name: right, side: right}]
"""
TWO_BY_FOUR = """
rows: [{name: top, side: upper}, {name: bottom, side: lower}]
columns:
  - {name: left, side: left}
  - {name: left-inner, side: left, near_centre: true}
  - {name: right-inner, side: right, near_centre: true}
  - {name: right, side: right}
"""


@pytest.fixture
def use_grid(tmp_path, monkeypatch):
    """Swap the project's grid file for one written from YAML text."""

    def swap(text: str):
        path = tmp_path / "grid.yaml"
        path.write_text(text)
        monkeypatch.setattr(grid_module, "GRID_FILE", path)
        position_grid.cache_clear()
        return position_grid()

    yield swap
    position_grid.cache_clear()


def _facts(row: int, col: int, frame: DisplayFrame | None = None) -> CaptionFacts:
    return CaptionFacts("CT", ["liver"], "", "liver", None, 0.1, frame=frame, position=GridPosition(row, col))


def _record(row: int, col: int) -> dict:
    return {"grid_row": row, "grid_col": col, "roi_label": "liver", "sample_id": "s1", "area_frac": 0.1, "modality": "CT"}


def test_default_grid_is_the_5_by_5_grid_of_the_position_column():
    g = position_grid()
    assert (g.n_rows, g.n_cols, g.cells) == (5, 5, 25)
    assert g.vocabulary()["vertical"] == ("upper", "upper-middle", "middle", "lower-middle", "lower")
    assert g.vocabulary()["horizontal"] == ("left", "left-center", "center", "right-center", "right")
    assert [g.sides(r, 0)[0] for r in range(5)] == ["upper", "upper", "middle", "lower", "lower"]
    assert [g.sides(0, c)[1] for c in range(5)] == ["left", "left", "center", "right", "right"]
    assert [g.near_centre(c) for c in range(5)] == [False, True, False, True, False]
    assert g.cell_at(120 / 500, 499 / 500) == (4, 1) and g.cell_at(0.5, 0.0) == (0, 2)
    for phrase in g.vocabulary()["phrases"]:  # the grid reading agrees with the tolerant word reading
        cell = g.cell_of_phrase(phrase)
        assert phrase == g.phrase(*cell)
        assert parse_position_words(phrase) == parse_position_words(phrase.replace(" ", ", "))  # ", ": read word by word


def test_cells_names_and_patient_words_follow_a_3_by_3_grid(use_grid):
    use_grid(THREE)
    box = (140, 100, 160, 120)  # centre x 0.5, y 0.37: 5 x 5 would say (1, 2) "upper-middle center"
    assert grid_cell(box, 300, 300) == (1, 1) and position_phrase(box, 300, 300) == "mid centre"
    assert position_phrase((0, 0, 10, 10), 300, 300) == "high left"
    coronal = DisplayFrame(plane="coronal", up="superior")
    assert grid_position(box, 300, 300, coronal, (150.0, 110.0)).patient_level == "central"  # 5 x 5: superior
    sagittal = DisplayFrame(plane="sagittal", up="superior", anterior_side="left")
    assert grid_position((90, 0, 99, 9), 300, 300, sagittal, (95.0, 5.0)).patient_depth == "anterior"  # 5 x 5: column 1
    assert grid_position((140, 0, 150, 9), 300, 300, sagittal, (145.0, 5.0)).patient_depth == "central"
    assert parse_position_words("low right") == parse_position_words("lower right")  # grid names, not vocabulary words


def test_caption_and_vqa_wording_follow_the_grid(use_grid):
    g = use_grid(THREE)
    assert image_place(0, 1) == "the upper central part of the image"  # 5 x 5: left of centre
    assert image_place(1, 0) == "the left part of the image, at mid-height"
    assert image_place(1, 1) == "the centre of the image"
    assert image_location(0, 1) == "the upper central part of the image"
    asked = {q.question: q.answer for q in roi_questions(_record(1, 1), [], True)}
    assert asked["Is the outlined liver near the centre of the image?"] == "Yes"
    asked = {q.question: q.answer for q in roi_questions(_record(2, 1), [], True)}
    assert asked["Is the outlined liver in the lower half of the image?"] == "Yes" and not any("side" in q for q in asked)
    assert spread_words(Measurements(instance_cells=4)) == "over much of the image"  # 4 of 9 cells (5 x 5: 4 of 25)
    assert g.cells == 9
    use_grid(TWO_BY_FOUR)
    assert image_place(0, 1) == "the upper part of the image, left of centre"
    assert image_place(1, 3) == "the lower right part of the image"
    assert image_location(1, 2) == "the lower part of the image, right of centre"


def test_side_checks_and_vqa_validation_follow_the_grid(use_grid):
    use_grid(THREE)
    assert image_side_facts(_facts(1, 2)) == ("middle", "right")
    assert side_contradiction(["It lies in the left part of the image."], _facts(1, 2), ["liver"])
    assert not side_contradiction(["It lies in the left part of the image."], _facts(1, 1), ["liver"])
    axial = DisplayFrame(plane="axial", lateral="radiological")
    assert patient_side_fact(_facts(0, 1, axial)) is None and patient_side_fact(_facts(0, 0, axial)) == "right"
    where = {"question": "Where is it?", "answer_type": "open", "category": "location"}
    assert validate_pair({**where, "answer": "the lower right part"}, _record(0, 0), True) is None
    assert validate_pair({**where, "answer": "the upper left part"}, _record(2, 2), True) is None  # 5 x 5: the centre
    assert validate_pair({**where, "answer": "the upper left part"}, _record(0, 0), True) is not None
    assert validate_pair({**where, "answer": "on the left"}, _record(1, 1), True) is not None  # centre: no side to contradict
    assert "grid row 1, column 2 of 3 (0 = top / left)" in "\n".join(fact_lines(_facts(1, 2)))
    use_grid(TWO_BY_FOUR)
    assert "grid row 1 of 2, column 3 of 4 (0 = top / left)" in "\n".join(fact_lines(_facts(1, 3)))


@pytest.mark.parametrize(
    "text, message",
    [
        (THREE.replace("name: low", "name: high"), "row names must be unique"),
        (THREE.replace("{name: high, side: upper}", "{name: high, side: lower}"), "row sides must run upper, middle, lower"),
        (THREE.replace("{name: centre, side: center}", "{name: centre, side: center, near_centre: true}"), "near_centre needs"),
        (THREE.replace("name: mid,", "name: mid band,"), "row 'mid band': field 'name'"),
        (THREE.replace("side: middle", "side: centre"), "row 'mid': field 'side'"),
        ("rows: []\ncolumns: []", "field 'rows'"),
    ],
)
def test_a_broken_grid_file_names_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(GridDataError, match=message) as err:
        load_grid(path)
    assert "grid.yaml" in str(err.value)


@pytest.mark.parametrize("row", [0, 2, 4])
def test_near_centre_columns_are_worded_left_of_centre_not_just_left(row):
    """A near-centre band of the 5 x 5 grid runs from 10% to 30% of the width off the centre line:
    every phrasing names the side, none says "just", "slightly" or "a little", and the side check
    reads each one as that image side (and the other side as a contradiction)."""
    for col, side, other in ((1, "left", 3), (3, "right", 1)):
        for pick in range(6):
            place = image_place(row, col, pick)
            assert side in place and not any(w in place for w in ("just", "slightly", "a little"))
            said = [f"The liver lies in {place}."]
            assert not side_contradiction(said, _facts(row, col), ["liver"])
            assert side_contradiction(said, _facts(row, other), ["liver"])
