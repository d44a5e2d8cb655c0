"""``--plugin MODULE``: the only way Python code of the user's enters a run.

A config never imports or executes anything; a user who needs a custom Keras layer,
loss or metric registers it (``@keras.saving.register_keras_serializable()``) in a
module and names that module on the command line.
"""

from __future__ import annotations

import importlib
import traceback

from nnlab.errors import NnlabError


def import_plugins(modules: list[str]) -> None:
    """Import each named module (from the working directory or the installed packages).

    Raises:
        NnlabError: naming the module that cannot be imported and why.
    """
    import sys

    if modules and "" not in sys.path:
        sys.path.insert(0, "")
    for name in modules:
        if not name.replace(".", "").replace("_", "").isalnum():
            raise NnlabError(f"'{name}' is not a module name (e.g. my_layers or package.module)",
                             source=f"--plugin {name}")
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise NnlabError(f"cannot import: {err}", source=f"--plugin {name}") from None
        except Exception as err:
            last = traceback.extract_tb(err.__traceback__)[-1]
            raise NnlabError(f"raised {type(err).__name__}: {err} ({last.filename}:{last.lineno})",
                             source=f"--plugin {name}") from None
