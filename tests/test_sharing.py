"""Share links: hyperparameters to query parameters and back, leniently."""

from urllib.parse import parse_qsl, urlencode

import pytest

from fmnist_core.hyperparameters import PRESETS, HyperParameters, filters_for_blocks, preset
from fmnist_core.sharing import from_query, to_query


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_survives_a_round_trip_through_a_url(name):
    query_string = urlencode(to_query(PRESETS[name]))
    hp, warnings = from_query(dict(parse_qsl(query_string)))
    assert hp == PRESETS[name] and warnings == []


def test_query_values_are_plain_text():
    query = to_query(preset("best"))
    assert query["filters"] == "32,64,128" and query["augment"] == "true" and query["learning_rate"] == "0.002"
    assert set(query) == set(HyperParameters().to_dict())


def test_missing_parameters_keep_the_base_values():
    base = preset("quick")
    hp, warnings = from_query({"epochs": "7", "batch_norm": "false"}, base=base)
    assert hp == base.with_changes(epochs=7, batch_norm=False) and warnings == []


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("epochs", "lots", "whole number"),
        ("epochs", "999", "outside"),
        ("dropout_rate", "nan", "finite"),
        ("augment", "maybe", "true or false"),
        ("optimizer", "adagrad", "expected one of"),
        ("learning_rate", "0.0007", "expected one of"),  # valid for the dataclass, but not on the slider
        ("batch_size", "100", "expected one of"),
        ("filters", "32,x", "whole numbers"),
        ("filters", "32,50", "not among the offered"),
        ("filters", "8,8,8,8,8", "0 to 4"),
    ],
)
def test_a_bad_value_is_named_in_a_warning_and_falls_back_to_the_base(name, text, reason):
    base = preset("seed-004")
    hp, warnings = from_query({name: text, "seed": "7"}, base=base)
    assert hp == base.with_changes(seed=7)  # the good parameter is still used
    assert len(warnings) == 1 and f"`{name}={text}`" in warnings[0] and reason in warnings[0]


def test_unknown_parameters_are_reported_but_streamlit_embed_options_are_not():
    hp, warnings = from_query({"embed": "true", "embed_options": "light_theme", "colour": "red"})
    assert hp == HyperParameters() and warnings == ["Ignored unknown link parameter `colour`."]


def test_filters_decide_the_block_count():
    hp, warnings = from_query({"filters": "16,32"}, base=preset("seed-004"))
    assert hp.num_conv_blocks == 2 and hp.filters == (16, 32) and warnings == []
    hp, warnings = from_query({"filters": "16,32", "num_conv_blocks": "3"}, base=preset("seed-004"))
    assert hp.filters == (16, 32) and hp.num_conv_blocks == 2 and "disagree" in warnings[0]


def test_a_block_count_alone_grows_or_trims_the_base_filters():
    hp, warnings = from_query({"num_conv_blocks": "4"}, base=preset("quick"))
    assert hp.filters == (32, 64, 128, 256) and warnings == []
    hp, _ = from_query({"num_conv_blocks": "1"}, base=preset("quick"))
    assert hp.filters == (32,)


def test_an_impossible_architecture_falls_back_to_the_base_architecture_only():
    # four 'valid' 7x7 blocks shrink 28 px below 1 px; each value alone is fine
    hp, warnings = from_query({"num_conv_blocks": "4", "kernel_size": "7", "padding": "valid", "epochs": "2"},
                              base=preset("quick"))
    assert hp == preset("quick", epochs=2)
    assert "`num_conv_blocks`, `kernel_size`, `padding`" in warnings[0] and "impossible model" in warnings[0]


def test_a_repeated_parameter_uses_its_last_value():
    hp, _ = from_query({"epochs": ["3", "4"]})
    assert hp.epochs == 4


def test_filters_for_blocks_doubles_onto_offered_counts():
    assert filters_for_blocks((30, 60), 4) == (30, 60, 128, 256)
    assert filters_for_blocks((32, 64, 128), 2) == (32, 64)


# ---- edited links that try harder ----------------------------------------------------------------------
def test_a_link_over_the_parameter_budget_falls_back_to_the_base_architecture():
    # one block of 256 filters leaves a 14x14x256 map: a 1024-unit dense layer alone needs 51 M parameters
    hp, warnings = from_query({"num_conv_blocks": "1", "filters": "256", "dense_units": "1024", "epochs": "2"},
                              base=preset("quick"))
    assert hp == preset("quick", epochs=2)
    assert len(warnings) == 1
    assert "`num_conv_blocks`, `filters`, `dense_units`" in warnings[0]
    assert "over the budget of 5,000,000" in warnings[0]


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("learning_rate", "inf", "finite"),
        ("dropout_rate", "-inf", "finite"),
        ("label_smoothing", "1e400", "finite"),  # overflows to inf
        ("epochs", "3.5", "whole number"),
        ("epochs", "-1", "outside 1-60"),
        ("epochs", "", "whole number"),
        ("train_subset_size", "60001", "outside 0-60000"),
        ("seed", "2147483648", "outside 0-2147483647"),
        ("kernel_size", "4", "expected one of 3, 5, 7"),
        ("padding", "SAME'; DROP TABLE", "expected one of same, valid"),
        ("batch_norm", "2", "true or false"),
        ("filters", "1,2,3,4,5,6", "0 to 4 numbers"),  # an empty list is valid: no conv blocks (an MLP)
        ("epochs", "9" * 5000, "5,000 characters long, expected at most 100"),  # beyond Python's int() digit limit
        ("optimizer", "adam" * 1000, "4,000 characters long"),
    ],
    ids=lambda value: value if len(str(value)) < 30 else f"{len(value)} chars",
)
def test_more_bad_values_are_named_and_fall_back(name, text, reason):
    base = preset("quick")
    hp, warnings = from_query({name: text}, base=base)
    assert hp == base
    assert len(warnings) == 1 and reason in warnings[0] and f"`{name}=" in warnings[0]


def test_long_values_and_names_are_cut_short_in_the_warning():
    hp, warnings = from_query({"epochs": "9" * 100_000, "x" * 10_000: "1"}, base=preset("quick"))
    assert hp == preset("quick") and len(warnings) == 2
    assert all(len(warning) < 300 for warning in warnings), [len(warning) for warning in warnings]
    assert f"`epochs={'9' * 39}…`" in warnings[0] and f"`{'x' * 39}…`" in warnings[1]


def test_a_value_cannot_break_out_of_its_code_span_into_markdown():
    # a backtick would end the code span and let the rest render as a clickable link on our page
    evil = "`[free prize](http://evil.example)`"
    hp, warnings = from_query({"optimizer": evil, evil: "1"})
    assert hp == HyperParameters() and len(warnings) == 2
    for warning in warnings:
        assert warning.count("`") == 2 and "'[free prize](http://evil.example)'" in warning
