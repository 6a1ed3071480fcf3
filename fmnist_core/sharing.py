"""Hyperparameters as a share link's query parameters, and back.

`to_query` writes every field as text (filters comma-separated). `from_query` reads such parameters
leniently: a bad or unknown value never fails, it becomes a warning naming the parameter, and that
field keeps the value of `base` (the preset or default the form started from).
Values that have a fixed list of choices (learning rate, batch size, filters) must be one of them,
because the form offers only those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from .hyperparameters import (
    FILTER_CHOICES,
    MAX_CONV_BLOCKS,
    HyperParameterError,
    HyperParameters,
    _check_field,
    filters_for_blocks,
    parse_int_list,
)

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
_ARCHITECTURE = ("num_conv_blocks", "filters", "convs_per_block", "kernel_size", "padding", "dense_units",
                 "extra_dense_units")
IGNORED_PREFIXES = ("embed",)  # Streamlit's own parameters (?embed=true) are not ours to judge
SHOWN_CHARACTERS = 40  # of a link's name or value quoted in a warning; a link may carry megabytes
MAX_VALUE_CHARACTERS = 100  # the longest real value, e.g. filters=256,256,256,256, has 15


def shown(text: Any) -> str:
    """Link text as quoted in a warning: cut to SHOWN_CHARACTERS, with no backtick to break out of the
    code span a warning puts it in (a link's text must never become a clickable link on our page)."""
    text = str(text).replace("`", "'").replace("\n", " ")
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float, e.g. 0.001
    return str(value)


def to_query(hp: HyperParameters) -> dict[str, str]:
    """Every hyperparameter as a query parameter; `from_query` reads it back to an equal dataclass."""
    return {spec.name: _text(getattr(hp, spec.name)) for spec in fields(HyperParameters)}


def _parse(spec: Any, text: str) -> Any:
    """The typed value of one parameter; raises ValueError with a short reason."""
    text = text.strip()
    if len(text) > MAX_VALUE_CHARACTERS:
        raise ValueError(f"{len(text):,} characters long, expected at most {MAX_VALUE_CHARACTERS}")
    if spec.type.startswith("tuple"):  # filters, extra_dense_units; empty text: an empty list
        values = parse_int_list(text)
        if spec.name != "filters":
            return values
        if not 0 <= len(values) <= MAX_CONV_BLOCKS:
            raise ValueError(f"expected 0 to {MAX_CONV_BLOCKS} numbers, one per conv block")
        bad = [v for v in values if v not in FILTER_CHOICES]
        if bad:
            raise ValueError(f"{bad} not among the offered filter counts {list(FILTER_CHOICES)}")
        return values
    if spec.type == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("expected true or false")
    if spec.type == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
    if spec.type == "float":
        try:
            value = float(text)
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return value
    return text


def _check(spec: Any, value: Any) -> None:
    """Raise ValueError if `value` is out of the field's range or not one of its offered choices."""
    if "choices" in spec.metadata and spec.name != "filters":
        if not any(value == choice for choice in spec.metadata["choices"]):
            choices = ", ".join(_text(c) for c in spec.metadata["choices"])
            raise ValueError(f"expected one of {choices}")
    try:
        _check_field(spec, value)
    except HyperParameterError as error:
        raise ValueError(str(error)) from None


def from_query(
    params: Mapping[str, str | list[str]], base: HyperParameters | None = None
) -> tuple[HyperParameters, list[str]]:
    """(hyperparameters, warnings) from query parameters; missing or bad values keep `base`'s value."""
    base = base or HyperParameters()
    specs = {spec.name: spec for spec in fields(HyperParameters)}
    values, warnings, read = base.to_dict(), [], set()
    values["filters"] = base.filters
    for name, raw in params.items():
        text = raw[-1] if isinstance(raw, list) else raw  # a repeated parameter: the last one wins, as in Streamlit
        if name not in specs:
            if not name.startswith(IGNORED_PREFIXES):
                warnings.append(f"Ignored unknown link parameter `{shown(name)}`.")
            continue
        try:
            value = _parse(specs[name], str(text))
            _check(specs[name], value)
        except ValueError as error:
            reason = str(error).replace("`", "'")
            warnings.append(
                f"Link parameter `{name}={shown(text)}` is not valid ({reason}); "
                f"using {_text(getattr(base, name))} instead."
            )
            continue
        values[name] = value
        read.add(name)

    blocks, filters = values["num_conv_blocks"], values["filters"]
    if "filters" in read:  # the filters, one per block, decide the block count
        if "num_conv_blocks" in read and len(filters) != blocks:
            warnings.append(
                f"Link parameters `num_conv_blocks={blocks}` and `filters={_text(filters)}` disagree; "
                f"using the {len(filters)} block(s) the filters describe."
            )
        values["num_conv_blocks"] = len(filters)
    else:
        values["filters"] = filters_for_blocks(base.filters, blocks)
    try:
        return HyperParameters(**values), warnings
    except HyperParameterError as error:
        changed = [name for name in _ARCHITECTURE if name in read]
        for name in _ARCHITECTURE:
            values[name] = getattr(base, name)
        warnings.append(
            f"Link parameters {', '.join(f'`{name}`' for name in changed) or '(architecture)'} together make "
            f"an impossible model ({error}); using the architecture of the preset instead."
        )
    try:
        return HyperParameters(**values), warnings
    except HyperParameterError as error:  # cannot happen with a valid base; still, never fail a page load
        warnings.append(f"Link parameters ignored: {error}")
        return base, warnings
