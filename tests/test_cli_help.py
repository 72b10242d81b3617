"""Every subcommand's --help renders (argparse %-formats help strings: a bare '%' crashes it)."""

import pytest

from cxrviewer.cli import build_parser, main


def _subcommands():
    parser = build_parser()
    return sorted(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["-h"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("view", "scan", "export", "infer", "models", "train", "evaluate", "publish", "selftest", "bench"):
        assert name in out


@pytest.mark.parametrize("name", _subcommands())
def test_subcommand_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "-h"])
    assert e.value.code == 0
    assert f"usage: cxrviewer {name}" in capsys.readouterr().out
