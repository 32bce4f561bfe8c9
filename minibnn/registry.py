"""Registry: string names for the things a user picks by name (quantizers, constraints, initializers, models).

``kernel_quantizer="ste_sign"``, ``weight_init="glorot_uniform"`` or ``kernel_constraint="weight_clip"`` all go
through one small mechanism: a :class:`Registry` maps names (with aliases) to factories and turns an
identifier — a name, a class, an object already built, or None — into the object.

Example:
    >>> shapes = Registry("shape")
    >>> shapes.register(["square", "box"], lambda side=1: ("square", side))
    >>> shapes.resolve("box", side=2)
    ('square', 2)
    >>> shapes.names()
    ['box', 'square']
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

    def register(self, names: Union[str, Sequence[str]], factory: Callable[..., Any]) -> None:
        """Make each of ``names`` build ``factory(**kwargs)``.

        Raises:
            ValueError: if a name is already taken.
        """
        for name in [names] if isinstance(names, str) else list(names):
            if name in self._factories:
                raise ValueError(f"register: the {self.kind} name {name!r} is already taken")
            self._factories[name] = factory

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
        if name not in self._factories:
            raise ValueError(f"unknown {self.kind} {name!r}; known names: {', '.join(self.names())}")
        return self._factories[name](**kwargs)

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
