"""Backends looked up by name. An unknown name raises and lists the valid ones: no silent fallback."""

from __future__ import annotations

import inspect
from typing import Callable, Generic, TypeVar

from faceshot.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories of one kind of stage (detectors, aligners, embedders)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def add(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return add

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str, **options: object) -> T:
        try:
            factory = self._factories[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None
        keywords = _keywords(factory)
        unknown = [] if keywords is None else sorted(set(options) - set(keywords))
        if unknown:
            valid = ", ".join(keywords or []) or "none"
            raise ConfigError(
                f"{self.kind} {name!r} has no option {', '.join(map(repr, unknown))}; its options: {valid}"
            )
        try:
            return factory(**options)
        except TypeError as exc:
            # A factory taking **options passes them on (a lambda around a class): the class refuses
            # an unknown one with a TypeError.
            if "unexpected keyword argument" not in str(exc):
                raise
            raise ConfigError(f"{self.kind} {name!r}: {exc}") from None


def _keywords(factory: Callable[..., object]) -> list[str] | None:
    """The keyword options a factory takes, or None when it takes any (``**kwargs``) or cannot be read.

    A class whose ``__init__`` passes ``**options`` on to its parent's takes the parent's options too.
    """
    chain = [c.__dict__["__init__"] for c in factory.__mro__ if "__init__" in c.__dict__] if isinstance(factory, type) else [factory]
    names: list[str] = []
    for function in chain:
        try:
            parameters = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):
            return None
        if isinstance(factory, type):
            parameters = parameters[1:]  # self
        names += [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names
    return None
