"""Words on the page: user text (run names, file names, sweep names, model folders' names and the store's warnings
and cards that quote them: anything a person or a file chose) shown as plain text by `plain`, never as Markdown, and
the names people read for hyperparameters and their values."""

from __future__ import annotations

import re

# Every ASCII punctuation mark CommonMark lets a backslash escape, which covers Markdown's syntax (links and images,
# emphasis, code, HTML) and Streamlit's own (:colour[…] and :emoji: directives, $LaTeX$).
_MARKDOWN_PUNCTUATION = re.compile(r"([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")
# Streamlit's Markdown (GFM) makes a web or e-mail address in text a link, escaped or not (it looks for them in the
# text the escapes give back), and takes a closing quote into it: a run named "see https://x.org" showed every visitor
# a link to x.org”. An address is linked only after a space or punctuation (an e-mail: only with a name before its @),
# so an invisible word joiner there keeps it plain text.
_ADDRESS = re.compile(r"(?i)(?=https?:|www\.)|(?=@)")
WORD_JOINER = "\u2060"


def unlinked(text: str) -> str:
    """`text` with a word joiner before each web or e-mail address in it, which Markdown then leaves as text; it
    reads the same (what a browser test finds on the page for `text`)."""
    return _ADDRESS.sub(WORD_JOINER, text)


def plain(text: object, max_chars: int = 80) -> str:
    """`text` escaped to show exactly as typed inside Markdown, on one line, cut to `max_chars` with an ellipsis; web
    and e-mail addresses in it are not made links."""
    text = " ".join(str(text).split())
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", unlinked(text))


# What the pages call each hyperparameter; the rest read as their field name in words ("learning rate").
HYPERPARAMETER_LABELS = {
    "num_conv_blocks": "Conv blocks", "convs_per_block": "Convolutions per block", "kernel_size": "Kernel size",
    "batch_norm": "Batch norm", "dropout_rate": "Dropout rate", "dense_units": "Dense units",
    "lr_schedule": "Learning-rate schedule", "early_stopping_patience": "Early-stopping patience",
    "augment": "Augment images", "mirror_average": "Mirror-image average",
    "train_subset_size": "Training images (0: all)",
    "validation_fraction": "Validation fraction", "label_smoothing": "Label smoothing",
    "precision": "Arithmetic precision", "extra_dense_units": "Extra dense layers (units, comma-separated)",
    "sketch_fraction": "Drawn sketches (share of training images)",
    "non_item_fraction": "Non-items (share of training images)",
}


def hyperparameter_label(name: str) -> str:
    """A hyperparameter's name as the pages write it: 'Dropout rate', 'Learning rate', 'Conv blocks'."""
    return HYPERPARAMETER_LABELS.get(name, name.replace("_", " ").capitalize())


def shown_value(value: object) -> str:
    """A hyperparameter's value as the pages show it: 'on'/'off', 0.001 (not 0.0010000), 64."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def hyperparameter_values(values: dict) -> str:
    """Swept values in words: 'Learning rate 0.001, Batch size 64, Augment images on'."""
    return ", ".join(f"{hyperparameter_label(name)} {shown_value(value)}" for name, value in values.items())


def count(number: int, noun: str) -> str:
    """'1 trial', '3 trials': a count with its noun in the right number."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def trial_number(trial_id: str) -> str:
    """Keras Tuner numbers trials from 0 ('00', '01', …); people, the table and the progress line from 1."""
    return str(int(trial_id) + 1) if str(trial_id).isdigit() else str(trial_id)
