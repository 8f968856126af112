"""The public surface is small, documented, and importing it pulls in no driver."""

from __future__ import annotations

import subprocess
import sys

import praisondb


def test_all_matches_public_names() -> None:
    public = {name for name in dir(praisondb) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(praisondb, name)).__name__ == "module"}
    public.discard("annotations")  # from __future__ import annotations
    assert set(praisondb.__all__) - {"__version__"} == public - modules


def test_every_export_has_a_docstring_or_is_data() -> None:
    for name in praisondb.__all__:
        obj = getattr(praisondb, name)
        if isinstance(obj, type) and obj.__module__.startswith("praisondb"):
            assert obj.__doc__, f"{name} has no docstring"


def test_import_loads_no_driver() -> None:
    code = (
        "import sys, praisondb; "
        "drivers = {'psycopg', 'pymysql', 'pymongo', 'redis', 'clickhouse_connect', 'chdb', 'anthropic'}; "
        "print(sorted(drivers & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_error_class_is_exported() -> None:
    errors = set(praisondb.errors.__all__) - {"BatchTypeError"}  # internal to the sink
    assert {"PraisonDBError", "ConfigError", "BackendUnavailable", "StorageFull"} <= errors
    assert errors <= set(praisondb.__all__)
    for name in errors:
        assert issubclass(getattr(praisondb, name), praisondb.PraisonDBError)
