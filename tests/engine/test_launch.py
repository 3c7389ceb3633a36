"""Config loading for the tools."""
import pytest

from mmsnnmlp.engine.launch import load_config


def test_config_syntax_error_names_file_and_line(tmp_path):
    base = tmp_path / 'base.py'
    base.write_text("model = dict(\n    backbone=dict(type='SNNMLP',\n    neck=None\nx = [\n")
    child = tmp_path / 'child.py'
    child.write_text("_base_ = ['./base.py']\ndefault_scope = 'mmdet'\n")
    with pytest.raises(SyntaxError, match=rf'Syntax error in config {base}, line \d+: '):
        load_config(str(child))
    child.write_text("default_scope = 'mmdet'\nmodel = dict(type='X',, )\n")
    with pytest.raises(SyntaxError, match=rf'{child}, line 2: .*\n    model = dict'):
        load_config(str(child))
