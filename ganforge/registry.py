"""Small name -> component registries, so that `loss: hinge` in YAML and the Python object are one thing."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, cast

from .errors import ConfigError, choices_message

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of components; unknown names and arguments raise ConfigError listing the choices."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._origins: dict[str, Any] = {}

    def register(self, name: str | None = None, origin: Any = None) -> Callable[[T], T]:
        """Decorator registering a class or function under `name` (default: its __name__).

        `origin` is the user's definition behind a wrapped component (a loader, a loss function). Registering a
        name again with the same definition (a notebook cell run twice, a script that is also its recipe's
        plugin) replaces it; another definition under a taken name is an error.
        """

        def deco(obj: T) -> T:
            key = name or cast(Any, obj).__name__
            source = obj if origin is None else origin
            if key in self._items and not same_definition(self._origins.get(key), source):
                raise ValueError(
                    f"{self.kind} {key!r} registered twice: by {describe(self._origins.get(key))} and by "
                    f"{describe(source)}; choose another name"
                )
            self._items[key] = obj
            self._origins[key] = source
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


def _source_file(obj: Any) -> str | None:
    """The file that defines a function or class (its methods' code, else its module's file), or None."""
    code = getattr(obj, "__code__", None)
    if code is None and isinstance(obj, type):
        code = next((v.__code__ for v in vars(obj).values() if hasattr(v, "__code__")), None)
    if code is not None:
        return os.path.realpath(code.co_filename)
    try:
        f = inspect.getsourcefile(obj)
    except (TypeError, OSError):
        return None
    return os.path.realpath(f) if f else None


def same_definition(a: Any, b: Any) -> bool:
    """True when `a` and `b` are one definition loaded twice: same qualified name, and same module or source file.

    A script run as __main__ and imported again as a plugin, or a notebook cell executed again, defines a new
    object for the same code; two different components that merely share a name are not the same definition.
    """
    if a is b:
        return True
    qa, qb = getattr(a, "__qualname__", None), getattr(b, "__qualname__", None)
    if qa is None or qa != qb:
        return False
    if getattr(a, "__module__", None) == getattr(b, "__module__", None):
        return True
    fa = _source_file(a)
    return fa is not None and fa == _source_file(b)


def describe(obj: Any) -> str:
    """`module.qualname` of a registered definition, for messages."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


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
