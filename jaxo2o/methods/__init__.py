"""The methods, one module each. A method joins the registry by being defined (a subclass of
`jaxo2o.core.method.Method` with a `name`); importing this package imports every module in it."""

from __future__ import annotations

import importlib
import pkgutil

from jaxo2o.config import ConfigError
from jaxo2o.core.method import Method, registered

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")


def method_names() -> tuple[str, ...]:
    """Every registered method's name, sorted."""
    return tuple(sorted(registered()))


def get_method(name: str) -> type[Method]:
    """The class of a registered method; an unknown name is a ConfigError listing the choices."""
    methods = registered()
    if name not in methods:
        raise ConfigError(f"method: unknown {name!r}; choose one of {method_names()}")
    return methods[name]
