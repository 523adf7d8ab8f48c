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
