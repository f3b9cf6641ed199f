"""The same rooms in every service (docs/architecture.md): entrypoints in `service.py` that only
call use cases, the use cases in `handlers.py`, SQL only in `store.py` with its in-memory twin,
and a unit test of the handlers in memory."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("accounts", "consulting", "matching", "notify", "activities", "insights")
ROOMS = ("service", "handlers", "store", "memory", "schemas", "messages", "settings")


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_the_same_rooms(name):
    folder = ROOT / "services" / name
    assert [room for room in ROOMS if not (folder / f"{room}.py").exists()] == []
    assert (folder / "migrations").is_dir()
    assert (ROOT / "tests" / "unit" / f"test_{name}_handlers.py").exists()


@pytest.mark.parametrize("name", SERVICES)
def test_entrypoints_reach_state_only_through_a_use_case(name):
    """`service.py` opens units of work and hands them to `handlers`; it reads no table,
    publishes nothing and writes no SQL itself."""
    tree = ast.parse((ROOT / "services" / name / "service.py").read_text())
    touched = sorted(
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("store", "publish", "publish_many", "execute", "one", "all", "cursor")
        and isinstance(node.value, ast.Name)
        and node.value.id in ("uow", "tx")
    )
    assert touched == []


@pytest.mark.parametrize("name", SERVICES)
def test_only_the_store_writes_sql(name):
    for room in ("service", "handlers"):
        source = (ROOT / "services" / name / f"{room}.py").read_text()
        assert "SELECT " not in source and "INSERT INTO" not in source, (name, room)


@pytest.mark.parametrize("name", SERVICES)
def test_the_store_is_a_class_over_the_unit_of_work(name):
    store = importlib.import_module(f"services.{name}.store")
    classes = [
        c
        for _, c in inspect.getmembers(store, inspect.isclass)
        if c.__module__ == store.__name__ and c.__name__.endswith("Store")
    ]
    assert len(classes) == 1, classes
    assert list(inspect.signature(classes[0]).parameters)[0] == "uow"
    module_functions = [
        n
        for n, f in inspect.getmembers(store, inspect.isfunction)
        if f.__module__ == store.__name__ and {"uow", "tx"} & set(inspect.signature(f).parameters)
    ]
    assert module_functions == []  # no SQL outside the class
