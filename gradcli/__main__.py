"""``python -m gradcli``: the same entry as the ``gradcli`` command."""

try:
    from _gradcli_entry import main
except ImportError:  # the package without its entry module beside it
    from .cli import main

main()
