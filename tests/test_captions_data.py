"""The caption wording data files: validated once, clear errors for a broken file."""

from __future__ import annotations

import shutil

import pytest

from medtrinity_assets.captions import data_files
from medtrinity_assets.captions.data_files import Appearance, Wording, WordingDataError, load_data, template_fields


def test_bundled_files_load_and_every_template_is_fillable():
    w = data_files.wording()
    assert template_fields(w.positions.corner[0]) == {"v", "h"} and data_files.appearance().ct_bands[-1].below > 1000
    for key, variants in w.sentences.items():
        for template in variants if isinstance(variants, list) else [t for v in variants.values() for t in v]:
            template_fields(template)  # raises on a malformed template
    assert "ct" in data_files.vocabulary().modalities and data_files.labels().names["lungs"].single_mask


def test_broken_files_fail_with_the_file_and_field(tmp_path):
    for name in ("appearance", "wording"):
        shutil.copy(data_files.DATA_DIR / f"{name}.yaml", tmp_path / f"{name}.yaml")
    text = (tmp_path / "appearance.yaml").read_text()
    (tmp_path / "appearance.yaml").write_text(text.replace("max_std_hu: 120.0", "max_std_hu: lots"))
    with pytest.raises(WordingDataError, match=r"appearance.yaml: field 'max_std_hu'"):
        load_data("appearance", Appearance, tmp_path)
    text = (tmp_path / "wording.yaml").read_text()
    (tmp_path / "wording.yaml").write_text(text.replace('"{Subj} {measures} about {diameter} across."', '"{Subj} {measures about"'))
    with pytest.raises(WordingDataError, match="bad template"):
        load_data("wording", Wording, tmp_path)
    (tmp_path / "wording.yaml").write_text("sentences: [unclosed")
    with pytest.raises(WordingDataError, match="not valid YAML: line 1"):
        load_data("wording", Wording, tmp_path)


def test_comparison_classes_are_checked_at_load(tmp_path):
    """A structure in two comparison classes, or a cross pair naming no class, fails at load."""
    text = (data_files.DATA_DIR / "appearance.yaml").read_text()
    assert "  muscle: [autochthon," in text and "compare_across: [[nerve, blood]" in text
    (tmp_path / "appearance.yaml").write_text(text.replace("  muscle: [autochthon,", "  muscle: [liver, autochthon,"))
    with pytest.raises(WordingDataError, match=r"structures in two classes \['liver'\]"):
        load_data("appearance", Appearance, tmp_path)
    (tmp_path / "appearance.yaml").write_text(text.replace("compare_across: [[nerve, blood]", "compare_across: [[nerve, blod]"))
    with pytest.raises(WordingDataError, match=r"compare_across names no class \['blod'\]"):
        load_data("appearance", Appearance, tmp_path)
    keys = {k for members in data_files.appearance().compare_classes.values() for k in members}
    assert {"kidney", "vertebrae", "rib", "lung upper lobe", "heart atrium", "portal vein and splenic vein"} <= keys
    from medtrinity_assets.captions.labels import side_of, structure_key

    assert [structure_key(x) for x in ("rib_left_9", "vertebrae_L2", "lung upper lobe left", "heart_atrium_right", "kidney_left")] == [
        "rib", "vertebrae", "lung upper lobe", "heart atrium", "kidney"]
    assert (side_of("kidney_left"), side_of("hip right"), side_of("aorta")) == ("left", "right", None)
