"""Backends looked up by name. An unknown name raises and lists the valid ones: no silent fallback.

An unknown *option* of a known backend raises the same way, listing the options that backend takes
(read from the signature of its factory, or declared when it is registered).
"""

from __future__ import annotations

import inspect
from typing import Callable, Generic, Iterable, TypeVar

from faceshot.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories of one kind of stage (detectors, aligners, embedders)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}
        self._options: dict[str, tuple[str, ...]] = {}

    def register(self, name: str, *, options: Iterable[str] | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Register a factory under ``name``. ``options``: the keyword options it takes, when its own
        signature does not say (a ``lambda **options`` that passes them on)."""

        def add(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            self._options[name] = tuple(sorted(options)) if options is not None else _keywords(factory)
            return factory

        return add

    def names(self) -> list[str]:
        return sorted(self._factories)

    def options(self, name: str) -> tuple[str, ...]:
        """The keyword options the backend ``name`` takes, sorted (:class:`ConfigError` if unknown)."""
        self._factory(name)
        return self._options[name]

    def check(self, name: str, options: Iterable[str]) -> None:
        """Raise :class:`ConfigError` naming the valid options if ``name`` does not take all of ``options``."""
        valid = self.options(name)
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ConfigError(
                f"{self.kind} {name!r} has no option {', '.join(repr(u) for u in unknown)}; "
                f"its options: {', '.join(valid) if valid else '(none)'}"
            )

    def create(self, name: str, **options: object) -> T:
        factory = self._factory(name)
        self.check(name, options)
        return factory(**options)

    def _factory(self, name: str) -> Callable[..., T]:
        try:
            return self._factories[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None


def _keywords(factory: Callable[..., object]) -> tuple[str, ...]:
    """The keyword parameters of a factory; for a class, of its ``__init__`` and, while they pass
    ``**options`` on, of its base classes' (``HogDetector`` takes ``DlibDetector``'s options)."""
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    functions = [klass.__dict__["__init__"] for klass in factory.__mro__ if "__init__" in klass.__dict__] \
        if isinstance(factory, type) else [factory]
    found: set[str] = set()
    for function in functions:
        if function is object.__init__:
            break
        parameters = list(inspect.signature(function).parameters.values())
        found |= {p.name for p in parameters if p.kind in kinds and p.name != "self"}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            break
    return tuple(sorted(found))
