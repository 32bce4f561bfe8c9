"""The name registry behind quantizers.get, constraints.get, init.get and models.get."""

import pytest

from minibnn.registry import Registry


class Base:
    def __init__(self, size=1):
        self.size = size


def test_names_aliases_classes_callables_and_none():
    reg = Registry("widget", base=Base)
    reg.register("widget", "w")(Base)
    assert reg.names() == ["w", "widget"] and "w" in reg
    assert reg.resolve("w", size=3).size == 3
    assert reg.resolve(Base, size=2).size == 2
    fn = lambda x: x  # noqa: E731
    assert reg.resolve(fn) is fn and reg.resolve(None) is None


def test_errors_name_what_was_given():
    reg = Registry("widget", base=Base)
    reg.register("widget")(Base)
    with pytest.raises(ValueError, match="unknown widget 'wdget'; known names: widget"):
        reg.resolve("wdget")
    with pytest.raises(ValueError, match="'widget' is already taken"):
        reg.register("widget")(Base)
    with pytest.raises(TypeError, match="only go with a widget name or class"):
        reg.resolve(print, size=2)
    with pytest.raises(TypeError, match="got int 3"):
        reg.resolve(3)
    with pytest.raises(TypeError, match="or class; got NoneType"):
        reg.resolve(None, allow_none=False)

