"""AppTests of the Train form as a learner moves its sliders: everything derived follows at once, before Start.

Nothing here presses Start, so the page runs against the repository's model store (or a copy, for other settings).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from apptest_support import open_page, serving_models_from, texts, with_shipped_model

from fmnist_core.hyperparameters import PRESETS
from fmnist_core.sharing import from_query, to_query


def _caption_with(at, words: str) -> str:
    return next(caption.value for caption in at.caption if words in caption.value)


def _share_link(at) -> str:
    return next(code.value for code in at.code if "?" in code.value)


def test_the_parameter_count_and_feature_maps_follow_the_sliders_before_start():
    at = open_page(query={"preset": "quick"})
    quick = PRESETS["quick"]
    assert f"{quick.parameter_count():,} parameters" in _caption_with(at, "parameters")
    at.slider(key="hp_dense_units").set_value(256).run()
    at.slider(key="hp_num_conv_blocks").set_value(3).run()
    expected = quick.with_changes(dense_units=256, num_conv_blocks=3)
    caption = _caption_with(at, "parameters")
    assert f"{expected.parameter_count():,} parameters" in caption
    assert " → ".join(map(str, expected.feature_map_sizes())) in caption


def test_an_impossible_model_is_named_as_the_sliders_make_it_and_start_is_disabled():
    at = open_page(query={"preset": "quick"})
    at.slider(key="hp_num_conv_blocks").set_value(4).run()
    at.select_slider(key="hp_kernel_size").set_value(7).run()
    at.selectbox(key="hp_padding").set_value("valid").run()
    assert "cannot be trained" in texts(at.error) and "below 1x1" in texts(at.error)
    assert at.button(key="start_training").disabled
    assert not [caption for caption in at.caption if "parameters**" in caption.value]  # no stale count


def test_the_share_link_carries_the_form_as_it_is_now():
    at = open_page(query={"preset": "quick"})
    at.slider(key="hp_epochs").set_value(3).run()
    at.select_slider(key="hp_learning_rate").set_value(1e-4).run()
    query = {name: values for name, values in parse_qs(urlsplit(_share_link(at)).query).items()}
    hp, warnings = from_query(query)
    assert not warnings and hp == PRESETS["quick"].with_changes(epochs=3, learning_rate=1e-4)
    assert "preset" not in query  # the link no longer claims to be the preset


def test_an_edited_preset_is_labelled_custom_and_back_to_it_puts_every_setting_back():
    at = open_page(query={"preset": "quick"})
    at.slider(key="hp_epochs").set_value(3).run()
    at.slider(key="hp_dense_units").set_value(64).run()
    # the page never writes the preset box: a value written there raced the browser's next slider move, which sent
    # the old pick back and filled the whole form with the preset again
    assert at.selectbox(key="preset").value == "quick"
    assert "Edited from the quick preset: this run will be labelled custom." in texts(at.caption)
    assert "preset=" not in at.code[0].value and "epochs=3" in at.code[0].value  # the link is of a custom form
    at.button(key="back_to_preset").click().run()
    assert at.slider(key="hp_epochs").value == PRESETS["quick"].epochs
    assert at.slider(key="hp_dense_units").value == PRESETS["quick"].dense_units
    assert "preset=quick" in at.code[0].value and "Edited from" not in texts(at.caption)
    assert not [button for button in at.button if button.key == "back_to_preset"]


def test_controls_that_do_not_apply_are_disabled():
    at = open_page(query={"preset": "quick"})  # 2 conv blocks
    filters = [at.select_slider(key=f"hp_filters_{block}") for block in range(1, 5)]
    assert [slider.disabled for slider in filters] == [False, False, True, True]
    at.slider(key="hp_num_conv_blocks").set_value(0).run()
    assert all(at.select_slider(key=f"hp_filters_{block}").disabled for block in range(1, 5))
    assert at.select_slider(key="hp_kernel_size").disabled and at.toggle(key="hp_batch_norm").disabled
    at.slider(key="hp_num_conv_blocks").set_value(3).run()
    assert [at.select_slider(key=f"hp_filters_{block}").disabled for block in range(1, 5)] == [False] * 3 + [True]
    assert not at.select_slider(key="hp_kernel_size").disabled


def test_the_few_settings_that_matter_most_come_first_and_the_rest_are_one_click_away():
    at = open_page(query={"preset": "quick"})
    more = at.expander[0]
    assert more.label.startswith("More settings")
    inside = {widget.key for kind in ("slider", "select_slider", "selectbox", "toggle", "text_input", "number_input")
              for widget in more.get(kind)}
    assert {"hp_kernel_size", "hp_optimizer", "hp_seed", "hp_augment"} <= inside
    assert not inside & {"hp_num_conv_blocks", "hp_learning_rate", "hp_epochs", "hp_batch_size", "hp_dense_units"}


def test_extra_layers_left_without_a_first_dense_layer_stay_editable_so_they_can_be_cleared():
    at = open_page(query={"preset": "mlp"})  # dense 256 then extra layers 128,100
    at.slider(key="hp_dense_units").set_value(0).run()
    assert "extra_dense_units" in texts(at.error) and not at.text_input(key="hp_extra_dense_units").disabled


def test_a_model_that_needs_more_memory_to_train_than_the_server_allows_is_named_and_start_is_disabled(tmp_path):
    """#30 item 6: the form allowed a model that took 3.3 GB in the worker."""
    large = PRESETS["quick"].with_changes(num_conv_blocks=2, filters=(256, 256), convs_per_block=3, batch_norm=True,
                                          batch_size=512, dense_units=64)
    with serving_models_from(with_shipped_model(tmp_path), max_training_memory_mb=2000):
        at = open_page(query=to_query(large))
        assert (f"These settings cannot be trained: training this model would take about "
                f"{large.training_memory_bytes() / 1e9:.1f} GB of memory at batch size 512, over this server's limit "
                "of 2.0 GB for one run (FMNIST_MAX_TRAINING_MEMORY_MB). Use a smaller batch size") in texts(at.error)
        assert at.button(key="start_training").disabled
        at.select_slider(key="hp_batch_size").set_value(64).run()
        assert not at.error and not at.button(key="start_training").disabled
