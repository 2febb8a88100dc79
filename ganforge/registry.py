"""Small name -> component registries, so that `loss: hinge` in YAML and the Python object are one thing."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, cast

from .errors import ConfigError, choices_message

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of components; unknown names and arguments raise ConfigError listing the choices."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator registering a class or function under `name` (default: its __name__)."""

        def deco(obj: T) -> T:
            key = name or cast(Any, obj).__name__
            if key in self._items:
                raise ValueError(f"{self.kind} {key!r} registered twice")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """The component registered as `name`."""
        if name not in self._items:
            raise ConfigError(choices_message(self.kind, name, self._items))
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call the component `name` with arguments checked against its signature."""
        obj = cast(Callable[..., Any], self.get(name))  # build() is for the registries of callables
        check_kwargs(obj, kwargs, f"{self.kind} {name!r}")
        try:
            return obj(*args, **kwargs)
        except (ValueError, TypeError, ZeroDivisionError, AssertionError, RuntimeError) as e:
            # Arguments of the right names but impossible values (width 0, a string for a size, ...).
            if isinstance(e, ConfigError):
                raise
            shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k not in ("shape", "z_dim")) or "defaults"
            raise ConfigError(
                f"{self.kind} {name!r} cannot be built with {shown}: {str(e).splitlines()[0] if str(e) else type(e).__name__}."
            ) from None


def check_kwargs(fn: Callable[..., Any], kwargs: dict[str, Any], where: str) -> None:
    """Raise ConfigError if `kwargs` has a key that `fn` does not accept, listing the accepted ones."""
    sig = inspect.signature(fn)
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [
        n
        for n, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(choices_message(f"argument of {where}:", key, accepted))
