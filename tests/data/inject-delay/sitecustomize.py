# Test-only: delays Synapse's database preparation when the file named by
# HSBENCH_TEST_DELAY_FILE exists (it holds the delay in milliseconds). Python loads this module at
# start-up because tests/compare_gate.rs puts this directory on PYTHONPATH; nothing else uses it.
import os
import sys

_path = os.environ.get("HSBENCH_TEST_DELAY_FILE")
if _path and os.path.exists(_path):
    import importlib.abc
    import importlib.machinery
    import time

    _ms = int(open(_path).read().strip() or "0")
    _target = "synapse.storage.prepare_database"

    class _DelayFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != _target:
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return spec
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                original = module.prepare_database

                def prepare_database(*args, **kwargs):
                    time.sleep(_ms / 1000.0)
                    return original(*args, **kwargs)

                module.prepare_database = prepare_database

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _DelayFinder())
