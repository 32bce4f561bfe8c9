"""Registry: the one way minibnn maps names to things (quantizers, constraints, initializers, models, studies,
CLI commands, deploy's layer table).

``kernel_quantizer="ste_sign"``, ``weight_init="glorot_uniform"`` or ``kernel_constraint="weight_clip"`` all go
through one small mechanism: a :class:`Registry` maps names (with aliases) to factories and turns an
identifier — a name, a class, an object already built, or None — into the object. Names are given where the
thing is defined, with the :meth:`Registry.register` decorator.

Example:
    >>> shapes = Registry("shape")
    >>> @shapes.register("square", "box")
    ... def square(side=1):
    ...     return ("square", side)
    >>> shapes.resolve("box", side=2)
    ('square', 2)
    >>> shapes.names()
    ['box', 'square']
    >>> shapes.get("square") is square
    True
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Union


class Registry:
    """Names -> factories for one kind of thing.

    Args:
        kind: what the names name, used in messages ("quantizer", "constraint", ...).
        base: classes derived from it are accepted by :meth:`resolve` and instantiated with the keywords.
    """

    def __init__(self, kind: str, base: Optional[type] = None):
        self.kind, self.base = kind, base
        self._factories: Dict[str, Callable[..., Any]] = {}

    def register(self, *names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: make each of ``names`` build ``factory(**kwargs)``; the factory is returned unchanged.

        Raises:
            ValueError: if a name is already taken.
        """
        if not names or not all(isinstance(n, str) and n for n in names):
            raise TypeError(f"register: the {self.kind} names must be non-empty strings, got {names!r}")

        def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
            for name in names:
                if name in self._factories:
                    raise ValueError(f"register: the {self.kind} name {name!r} is already taken")
                self._factories[name] = factory
            return factory
        return decorate

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name`` (not called).

        Raises:
            ValueError: for an unknown name; the message lists the known ones.
        """
        if name not in self._factories:
            raise ValueError(f"unknown {self.kind} {name!r}; known names: {', '.join(self.names())}")
        return self._factories[name]

    def items(self) -> List[tuple]:
        """(name, factory) pairs, sorted by name."""
        return sorted(self._factories.items())

    def names(self) -> List[str]:
        """Every registered name, sorted."""
        return sorted(self._factories)

    def __contains__(self, name: str) -> bool:
        return name in self._factories

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build the thing registered as ``name``.

        Raises:
            ValueError: for an unknown name; the message lists the known ones.
        """
        return self.get(name)(**kwargs)

    def resolve(self, identifier: Any, allow_none: bool = True, **kwargs: Any) -> Any:
        """A name -> a new object; a subclass of ``base`` -> an instance; a callable -> itself; None -> None.

        Keyword arguments go to the constructor, so they only go with a name or a class.

        Raises:
            ValueError: for an unknown name.
            TypeError: for keywords with a built object, for None when ``allow_none`` is False, or for
                anything else.
        """
        if isinstance(identifier, str):
            return self.create(identifier, **kwargs)
        if self.base is not None and isinstance(identifier, type) and issubclass(identifier, self.base):
            return identifier(**kwargs)
        if (identifier is None and allow_none) or (identifier is not None and callable(identifier)):
            if kwargs:
                raise TypeError(f"keyword arguments {sorted(kwargs)} only go with a {self.kind} name or class, "
                                f"not with {identifier!r}")
            return identifier
        a = "an" if self.kind[0] in "aeiou" else "a"
        expected = f"{a} {self.kind} name (one of {', '.join(self.names())}), {a} {self.kind} object or class"
        raise TypeError(f"expected {expected}{' or None' if allow_none else ''}; got {type(identifier).__name__} "
                        f"{identifier!r}")
