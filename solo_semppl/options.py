"""Validated option groups for the solo-learn binding.

solo-learn fills defaults with ``omegaconf_select`` and checks required keys with
``OmegaConf.is_missing`` on dotted keys, which never fails for an absent key. Here every option
group is a schema: an unknown key (a typo) is an error that names it and lists the valid keys,
a value of the wrong kind or out of range is an error that names the key and what was expected,
and absent keys get their documented default.
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence

from omegaconf import DictConfig, OmegaConf


@dataclass(frozen=True)
class Option:
    """One config key: its default, the expected kind, and an optional check on the value.

    ``kind`` is a tuple of accepted Python types (``None`` is accepted when the default is
    ``None``); ``check`` returns True for a valid value; ``expected`` says what is valid in words.
    """

    default: Any
    kind: tuple
    check: Optional[Callable[[Any], bool]] = None
    expected: str = ""


def choice(default: str, *choices: str) -> Option:
    return Option(default, (str,), lambda v: v in choices, f"one of {list(choices)}")


def positive_int(default: Optional[int], allow_zero: bool = False) -> Option:
    low = 0 if allow_zero else 1
    return Option(default, (int,), lambda v: v >= low, f"an integer >= {low}")


def non_negative(default: Optional[float]) -> Option:
    return Option(default, (int, float), lambda v: v >= 0, "a number >= 0")


def positive(default: Optional[float]) -> Option:
    """A number > 0 (temperatures)."""
    return Option(default, (int, float), lambda v: v > 0, "a number > 0")


def in_unit_interval(default: float) -> Option:
    return Option(default, (int, float), lambda v: 0 <= v <= 1, "a number in [0, 1]")


def flag(default: bool) -> Option:
    return Option(default, (bool,), None, "true or false")


def apply_options(cfg: DictConfig, group: str, schema: Dict[str, Option]) -> DictConfig:
    """Validates ``cfg.<group>`` against ``schema`` in place and fills the defaults.

    Raises:
        ValueError: unknown key, wrong type or out-of-range value, naming ``<group>.<key>``.
    """
    given = OmegaConf.select(cfg, group, default=None)
    given = {} if given is None else OmegaConf.to_container(given, resolve=True)
    unknown = sorted(set(given) - set(schema))
    if unknown:
        raise ValueError(
            f"unknown key(s) {[f'{group}.{k}' for k in unknown]}; valid keys of '{group}': "
            f"{sorted(schema)}"
        )
    values = {key: check_value(f"{group}.{key}", given.get(key, option.default), option)
              for key, option in schema.items()}
    OmegaConf.update(cfg, group, values, merge=False, force_add=True)
    return cfg


def check_value(name: str, value: Any, option: Option) -> Any:
    """Returns ``value`` if ``option`` accepts it; ValueError naming ``name`` otherwise."""
    if value is None and option.default is None:
        return value
    if isinstance(value, bool) and bool not in option.kind:
        ok = False
    elif float in option.kind and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    else:
        ok = isinstance(value, option.kind)
    if ok and option.check is not None:
        ok = option.check(value)
    if not ok:
        raise ValueError(f"{name} = {value!r}: expected {option.expected or option.kind}")
    return value


def exactly_one(cfg_group: Dict[str, Any], keys: Sequence[str], group: str) -> str:
    """Returns the single key of ``keys`` that is set (not None) in ``cfg_group``, or raises."""
    given = [k for k in keys if cfg_group.get(k) is not None]
    if len(given) != 1:
        raise ValueError(
            f"set exactly one of {[f'{group}.{k}' for k in keys]} (got {len(given)}: {given})"
        )
    return given[0]
