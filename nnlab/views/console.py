"""The terminals nnlab prints to (rich consoles): results on stdout, errors and notes on stderr."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
