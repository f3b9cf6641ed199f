"""Finding a service's class by its name, without starting or patching anything (the runner
patches eventlet at import; the deploy steps and tests that only read a class must not)."""

import importlib


def service_class(name: str, path: str | None = None):
    """The service class `name` in `services/<name>/service.py`, or the `module:Class` given."""
    if path:
        module_name, _, class_name = path.partition(":")
        return getattr(importlib.import_module(module_name), class_name)
    module = importlib.import_module(f"services.{name}.service")
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "name", None) == name:
            return value
    raise LookupError(f"services/{name}/service.py defines no service named {name!r}")
