"""Architecture-declared build options: parsing the words a CLI command did not consume."""

from __future__ import annotations

import pytest

from ane_core.build_options import BuildOption, parse_build_options
from ane_core.errors import UsageError
from ane_core.testing import ToyArchitecture


class ToyWithOptions(ToyArchitecture):
    def build_options(self):
        return (
            BuildOption("seq_len", int, 128, "tokens per sequence"),
            BuildOption("pooling", str, "mean", "how to pool", choices=("mean", "cls")),
        )


def test_defaults_fill_every_declared_option():
    assert parse_build_options(ToyWithOptions(), []) == {"seq_len": 128, "pooling": "mean"}


@pytest.mark.parametrize("words", [["--seq-len", "64"], ["--seq-len=64"]])
def test_both_spellings_give_the_typed_value(words):
    assert parse_build_options(ToyWithOptions(), words)["seq_len"] == 64


def test_describe_lists_options_for_ane_list():
    described = ToyWithOptions().describe()["build_options"]
    assert described[0] == {"flag": "--seq-len", "default": 128, "help": "tokens per sequence"}
    assert ToyArchitecture().describe()["build_options"] == []


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--seq-len"], "toy option --seq-len needs a value"),
        (["--seq-len", "--pooling", "cls"], "toy option --seq-len needs a value"),
        (["--seq-len", "many"], "toy --seq-len got 'many', which is not of type int"),
        (["--pooling", "max"], "toy --pooling got 'max'. Use one of: mean, cls."),
        (["--depth", "3"], "toy has no option --depth. See `ane export --help`; toy build"),
        (["stray"], "unexpected argument 'stray'"),
        (["--seq-len", "1", "--seq-len=2"], "--seq-len is given twice"),
    ],
)
def test_bad_words_are_one_line_usage_errors(words, message):
    with pytest.raises(UsageError) as caught:
        parse_build_options(ToyWithOptions(), words)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_architecture_without_options_says_so():
    with pytest.raises(UsageError, match="toy has no build options"):
        parse_build_options(ToyArchitecture(), ["--seq-len", "3"])
