"""The `reclab` command's entry point: the lab's command line, or, where only the servers are installed
(`pip install .` without the `lab` extra), a message saying how to install the lab and how to serve without it."""

from __future__ import annotations

import sys

LAB_MISSING = (
    "reclab: the lab is not installed here (it needs {module!r}); this install serves only.\n"
    "  serve:           python -m servers.sanic_app --mongo-uri URI [--port P] [variant flags]\n"
    "                   (servers.tornado_app, servers.aiohttp_app; servers.fastapi_app and servers.starlette_app\n"
    "                   with --server uvicorn|granian)\n"
    "  install the lab: pip install 'reclab[lab]'"
)


def main(argv: list[str] | None = None) -> int:
    try:
        from reclab.cli import main as lab_main
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] in ("reclab", "workloads", "servers"):
            raise  # a module of reclab itself missing is a broken install, not a server-only one
        print(LAB_MISSING.format(module=error.name.split(".")[0]), file=sys.stderr)
        return 2
    return lab_main(argv)


if __name__ == "__main__":
    sys.exit(main())
