"""Model configurations as plain JSON values and back, without importing torch (model cards need them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hand_pose_core.errors import InputError


def config_from_dict(config_class: type, values: Mapping[str, Any]) -> Any:
    """A configuration dataclass from JSON values; unknown options are an error that names them."""
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown {config_class.__name__} option(s): {', '.join(unknown)}")
    return config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def config_dict(config: Any) -> dict[str, Any]:
    """A model configuration as plain JSON-able values (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
