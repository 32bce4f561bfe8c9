"""Cross-references to re-exported names resolve to the page that documents them.

``minibnn.Tensor`` is ``minibnn.tensor.Tensor``, ``minibnn.theory.X`` is defined in a submodule of theory...: the
API pages document each object once, where it is defined, so a reference written with the public, shorter path
is looked up again with the object's own ``__module__``.``__qualname__``.

A short reference written inside a docstring (``:func:`study_names```) is looked up in the docstring's module,
then in the packages above it (a module of ``minibnn.theory`` may name a function the package re-exports from a
sibling module, a study's inherited docstring a function of ``minibnn.experiments``).
"""
import importlib


def _canonical(target: str):
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if module and qualname and module.startswith("minibnn"):
            name = f"{module}.{qualname}"
            return name if name != target else None
        return None
    return None


def resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    candidates = [target]
    modname = node.get("py:module")
    if modname and not target.startswith("minibnn"):
        # the docstring's module first, then each package above it
        parts = modname.split(".")
        scopes = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
        candidates[:0] = [f"{scope}.{target.lstrip('.')}" for scope in scopes]
    for cand in candidates:
        if not cand.startswith("minibnn"):
            continue
        name = _canonical(cand)
        if name is None:
            continue
        domain = env.get_domain("py")
        node = node.deepcopy()
        node["reftarget"] = name
        return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], name, node, contnode)
    return _module_of_undocumented(app, env, node, contnode, candidates)


def _module_of_undocumented(app, env, node, contnode, candidates):
    """A reference to a module constant that exists but has no doc comment links to its module's page.

    autodoc cannot tell an undocumented module-level value from an imported one, so it shows neither; the
    reference is still right, so it points at the module. A name that does not exist stays an error.
    """
    if node.get("reftype") not in ("data", "obj", "attr", "const"):
        return None
    for cand in candidates:
        modname, _, attr = cand.rpartition(".")
        if not modname.startswith("minibnn"):
            continue
        try:
            module = importlib.import_module(modname)
        except ImportError:
            continue
        if not hasattr(module, attr):
            continue
        domain = env.get_domain("py")
        modnode = node.deepcopy()
        modnode["reftype"], modnode["reftarget"] = "mod", modname
        return domain.resolve_xref(env, node["refdoc"], app.builder, "mod", modname, modnode, contnode)
    return None


def setup(app):
    app.connect("missing-reference", resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
