"""Hyperparameter validation (each rule fails with its message), JSON round trip, old cards, presets and families."""

import dataclasses
import json
from pathlib import Path

import pytest

from fmnist_core.hyperparameters import (
    MAX_PARAMETERS,
    PRESETS,
    HyperParameterError,
    HyperParameters,
    field_specs,
    filters_for_blocks,
    preset,
)

SHIPPED_CARD = Path(__file__).resolve().parent.parent / "models" / "default" / "card.json"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_conv_blocks": 5, "filters": (8,) * 5}, r"num_conv_blocks=5 is outside 0-4"),
        ({"num_conv_blocks": -1, "filters": ()}, r"num_conv_blocks=-1 is outside 0-4"),
        ({"extra_dense_units": (128, 0)}, r"extra_dense_units=\[128, 0\]: \[0\] outside 1-1024"),
        ({"dense_units": 0, "extra_dense_units": (64,)}, r"extra_dense_units=\[64\] but dense_units=0"),
        ({"dropout_rate": 0.95}, r"dropout_rate=0.95 is outside 0.0-0.8"),
        ({"learning_rate": 0.5}, r"learning_rate=0.5 is outside 1e-05-0.1"),
        ({"learning_rate": float("nan")}, r"learning_rate=nan is a float, expected a finite float"),
        ({"batch_size": 4}, r"batch_size=4 is outside 16-512"),
        ({"epochs": 500}, r"epochs=500 is outside 1-60"),
        ({"train_subset_size": 70000}, r"train_subset_size=70000 is outside 0-60000"),
        ({"optimizer": "adagrad"}, r"optimizer='adagrad': expected one of 'adam', 'sgd', 'rmsprop'"),
        ({"kernel_size": 4}, r"kernel_size=4: expected one of 3, 5, 7"),
        ({"batch_norm": "yes"}, r"batch_norm='yes' is a str, expected a bool"),
        ({"epochs": "10"}, r"epochs='10' is a str, expected a int"),
        ({"epochs": True}, r"epochs=True is a bool, expected a int"),
        ({"filters": (32, 64)}, r"filters=\[32, 64\] has 2 entries but num_conv_blocks=3"),
        ({"filters": (32, 64, 1000)}, r"filters=\[32, 64, 1000\]: \[1000\] outside 4-256"),
        ({"filters": "32,64,128"}, r"filters='32,64,128': expected a list of whole numbers"),
        ({"validation_fraction": 0.0}, r"validation_fraction=0.0 is outside 0.02-0.5"),
    ],
)
def test_each_rule_fails_with_its_message(changes, message):
    with pytest.raises(HyperParameterError, match=message):
        dataclasses.replace(HyperParameters(), **changes)


def test_feature_maps_never_shrink_below_one_pixel():
    expected = (r"shrink the 28x28 image below 1x1 \(11x11 after block 1, 2x2 after block 2, "
                r"then nothing left in block 3\)")
    with pytest.raises(HyperParameterError, match=expected):
        HyperParameters(num_conv_blocks=3, filters=(8, 8, 8), kernel_size=7, padding="valid")
    ok = HyperParameters(num_conv_blocks=4, filters=(8, 8, 8, 8), padding="same")
    assert ok.feature_map_sizes() == [14, 7, 3, 1]


def test_parameter_budget_is_enforced():
    with pytest.raises(HyperParameterError, match=r"parameters, over the budget of 5,000,000"):
        HyperParameters(num_conv_blocks=1, filters=(256,), dense_units=1024)
    assert HyperParameters().parameter_count() < MAX_PARAMETERS


def test_json_round_trip_is_exact():
    hp = HyperParameters(learning_rate=3e-4, dropout_rate=0.35, filters=(24, 48, 96), augment=True, seed=123)
    assert HyperParameters.from_json(hp.to_json()) == hp
    for name, preset_hp in PRESETS.items():
        assert HyperParameters.from_json(preset_hp.to_json()) == preset_hp, name


def test_from_dict_rejects_unknown_keys_and_non_objects():
    with pytest.raises(HyperParameterError, match=r"unknown hyperparameter\(s\) colour"):
        HyperParameters.from_dict({"colour": "red"})
    with pytest.raises(HyperParameterError, match="got list, expected a JSON object"):
        HyperParameters.from_dict([1, 2])
    with pytest.raises(HyperParameterError, match="not valid JSON"):
        HyperParameters.from_json("{oops")


def test_ints_given_for_floats_are_accepted_as_floats():
    hp = HyperParameters.from_dict({"dropout_rate": 0, "label_smoothing": 0})
    assert hp.dropout_rate == 0.0 and isinstance(hp.dropout_rate, float)


def test_with_changes_adjusts_filters_to_block_count():
    hp = PRESETS["seed-004"]
    assert hp.with_changes(num_conv_blocks=2).filters == (32, 64)
    assert hp.with_changes(num_conv_blocks=4).filters == (32, 64, 64, 128)


def test_presets_are_the_documented_architectures():
    assert set(PRESETS) >= {"seed-000", "seed-002", "seed-004", "quick", "best"}
    seed_000 = PRESETS["seed-000"]
    assert (seed_000.filters, seed_000.dense_units, seed_000.optimizer) == ((30, 60), 60, "adam")
    seed_002 = PRESETS["seed-002"]
    assert (seed_002.filters, seed_002.dense_units, seed_002.dropout_rate, seed_002.early_stopping_patience) == (
        (32, 64, 64), 256, 0.5, 3)
    seed_004 = PRESETS["seed-004"]
    assert (seed_004.filters, seed_004.dense_units, seed_004.batch_size, seed_004.epochs) == ((32, 64, 64), 64, 64, 10)
    with pytest.raises(HyperParameterError, match="unknown preset 'fast'; expected one of: seed-000"):
        preset("fast")


def test_every_field_has_help_and_limits_for_the_ui():
    specs = field_specs()
    assert set(specs) == {field.name for field in dataclasses.fields(HyperParameters)}  # none left out
    for name, spec in specs.items():
        assert spec["help"], name
        assert "min" in spec or "choices" in spec or spec["type"] == "bool", name


def test_adding_conv_blocks_gives_the_same_filters_on_the_train_page_in_a_link_the_cli_and_a_sweep():
    """One rule for the filters of added blocks: seed-000's (30, 60) taken to 4 blocks doubles onto the
    offered counts, wherever the change is made."""
    from fmnist_core.cli import build_parser, hyperparameters_from_args
    from fmnist_core.sharing import from_query
    from fmnist_core.sweep import SweepSpec, trial_hyperparameters
    from views.train import FILTER_KEYS, form_values

    expected = (30, 60, 128, 256)
    assert filters_for_blocks((30, 60), 4) == expected
    train_page = form_values(PRESETS["seed-000"])
    assert tuple(train_page[key] for key in FILTER_KEYS) == expected
    assert from_query({"num_conv_blocks": "4"}, base=PRESETS["seed-000"])[0].filters == expected
    args = build_parser().parse_args(["train", "--preset", "seed-000", "--num-conv-blocks", "4"])
    assert hyperparameters_from_args(args).filters == expected
    spec = SweepSpec(vary={"num_conv_blocks": (2, 4)}, base_preset="seed-000")
    assert trial_hyperparameters(spec, {"num_conv_blocks": 4}).filters == expected
    assert PRESETS["seed-000"].with_changes(num_conv_blocks=4).filters == expected
    assert PRESETS["mlp"].with_changes(num_conv_blocks=2).filters == (32, 64)  # from no conv block: 32 first


def test_an_old_model_card_with_one_dense_layer_still_loads():
    card = json.loads(SHIPPED_CARD.read_text())
    old = {name: value for name, value in card["hyperparameters"].items()
           if name not in ("extra_dense_units", "precision")}  # as written before those fields existed
    hp = HyperParameters.from_dict(old)
    assert hp.extra_dense_units == () and hp.dense_layer_units() == (card["hyperparameters"]["dense_units"],)
    assert hp.family == "CNN"


def test_the_model_families_have_the_layers_their_names_promise():
    from fmnist_core.model import build_model

    softmax, mlp = preset("softmax-regression"), preset("mlp")
    assert (softmax.family, mlp.family) == ("softmax regression", "MLP")
    assert softmax.parameter_count() == 28 * 28 * 10 + 10
    dense = [layer.units for layer in build_model(mlp).layers if layer.__class__.__name__ == "Dense"]
    assert dense == [256, 128, 100, 10]
    assert preset("quick").with_changes(num_conv_blocks=0).filters == ()
    assert mlp.with_changes(num_conv_blocks=2).filters == (32, 64)


def test_the_training_memory_estimate_counts_activations_per_image_times_the_batch_and_the_weights():
    softmax = preset("softmax-regression").with_changes(batch_size=16)
    assert softmax.activation_values_per_image() == 784 * 2 + 20  # the scaled image twice, the logits, the softmax
    assert softmax.parameter_count() == 7850
    assert softmax.training_memory_bytes() == round(850_000_000 + 0.8 * 1588 * 16 * 4 + 7850 * 4 * (2 + 2))
    one_block = preset("seed-000").with_changes(num_conv_blocks=1, filters=(8,), kernel_size=3, dense_units=16,
                                                dropout_rate=0.5)
    assert one_block.activation_values_per_image() == 784 * 2 + 2 * 784 * 8 + 196 * 8 + 4 * 16 + 20


@pytest.mark.parametrize(("changes", "measured_mb"), [  # peak RSS of a real worker, 2026-12-03 (hyperparameters.py)
    ({"num_conv_blocks": 0, "filters": (), "dense_units": 0, "batch_size": 16}, 845),
    ({"batch_norm": True, "batch_size": 512, "augment": True}, 4412),
    ({"batch_size": 256}, 2043),
    ({"batch_norm": True, "batch_size": 128, "precision": "mixed_bfloat16"}, 1939),
])
def test_the_training_memory_estimate_is_within_ten_percent_of_the_measured_peaks(changes, measured_mb):
    large = {"num_conv_blocks": 2, "filters": (256, 256), "convs_per_block": 3, "dense_units": 128}
    hp = HyperParameters(**{**large, **changes})
    assert abs(hp.training_memory_bytes() / 1e6 - measured_mb) <= 0.1 * measured_mb
