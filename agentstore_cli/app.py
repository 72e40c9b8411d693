"""The `agentstore` command line: a Typer app over the same `Store` as the library.

Each command lives in its own module and is registered by one line in `COMMANDS`
below; a module is imported, and its command built, only when that command is looked
up, so `agentstore replay` does not pay for the fourteen others. Errors never reach the
user as tracebacks: `AgentstoreGroup.main` turns them into one line on stderr (exit 2
for usage errors, 1 for the rest); `--debug` shows the traceback too.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup
from typer.main import get_command_from_info
from typer.models import CommandInfo

import agentstore
from agentstore import AgentStoreError, AmbiguousSessionError, InvalidInputError
from agentstore_cli.common import (
    DATA_DIR_ENV,
    DEFAULT_DATA_DIR,
    CliError,
    GlobalOptions,
)
from agentstore_cli.helpfmt import AgentstoreCommand, MetavarStyle, reflow, restyle
from agentstore_cli.otel import otel_app
from agentstore_cli.sanitize import clean

__all__ = ["COMMANDS", "app", "main"]

# --- commands: one module each, registered by one line ("name", "module:function") -------
COMMANDS: list[tuple[str, str]] = [
    ("sessions", "agentstore_cli.sessions:sessions"),
    ("replay", "agentstore_cli.replay:replay"),
    ("stats", "agentstore_cli.stats:stats"),
    ("reprice", "agentstore_cli.reprice:reprice"),
    ("export", "agentstore_cli.export:export"),
    ("import", "agentstore_cli.export:import_"),
    ("fork", "agentstore_cli.fork:fork"),
    ("prune", "agentstore_cli.prune:prune"),
    ("delete", "agentstore_cli.delete:delete"),
    ("update", "agentstore_cli.update:update"),
    ("verify", "agentstore_cli.verify:verify"),
    ("migrate", "agentstore_cli.migrate:migrate"),
    ("copy", "agentstore_cli.copy:copy"),
    ("serve", "agentstore_cli.serve:serve"),
    ("ui", "agentstore_cli.ui:ui"),
]

DEBUG_ENV = "AGENTSTORE_DEBUG"

_HELP = """Inspect and replay agentstore sessions: what your agent did, step by step.

\b
Examples:
  agentstore sessions                         newest sessions first
  agentstore replay latest                    timeline of the newest session
  agentstore replay 3f2a                      any unique id prefix, or a name
  agentstore replay 3f2a -t tool_called,error only tool calls and errors
  agentstore replay 3f2a -f                   follow, live as the agent runs
  agentstore replay 3f2a --step               step through events and state
  agentstore replay 3f2a -o json | jq '.[].type'
  agentstore stats 3f2a                       tokens, cost, tools, errors
  agentstore --data-dir ./other sessions      another data directory

The data directory is --data-dir (before or after the command name), else \
$AGENTSTORE_DATA_DIR, else ./agent-data. Only import, fork, prune, delete, update \
and verify --repair write to it.
"""


class _LazyCommands(MutableMapping[str, Any]):
    """The root group's commands by name: each built the first time it is looked up.

    Names are all known at once (for help, listing and "did you mean"), in the order of
    `COMMANDS`; building one imports its module and turns its function into a Click
    command (measured: importing and building all of them cost 0.14 s at every start).
    """

    def __init__(self, built: Mapping[str, Any]) -> None:
        self._built = dict(built)

    def __getitem__(self, name: str) -> Any:
        command = self._built.get(name)
        if command is None:
            target = _TARGETS[name]  # KeyError for an unknown name, like a dict
            command = self._built[name] = _build(name, target)
        return command

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from _TARGETS
        yield from (name for name in self._built if name not in _TARGETS)

    def __len__(self) -> int:
        return len(_TARGETS.keys() | self._built.keys())


class AgentstoreGroup(MetavarStyle, TyperGroup):
    """The root group: turns every error into one clear line on stderr."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(self.commands)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the CLI; exit with 0, 1 (failure), 2 (usage error) or 130 (Ctrl-C)."""
        _DEBUG[0] = _env_flag(DEBUG_ENV)
        if sys.stdout is None:
            # Started without a stdout (`agentstore ... >&-`): the output goes nowhere,
            # as into a closed pipe, instead of failing on the first write.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
        # Rich (ours and Typer's help) exits with status 1 on a closed pipe; for the
        # length of the command it raises BrokenPipeError instead, which exits 0.
        rich_default = Console.on_broken_pipe
        Console.on_broken_pipe = _raise_broken_pipe  # type: ignore[method-assign,assignment]
        try:
            code = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except BaseException as exc:  # the one place errors are reported
            code = _report(exc)
        finally:
            Console.on_broken_pipe = rich_default  # type: ignore[method-assign]
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        """Return a command; a sub-app's (`otel`) gets the one help style too."""
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            restyle(command)
        return command

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        """Parse the arguments (this prints --help and --version)."""
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError as exc:
            raise _PipeClosed from exc

    def invoke(self, ctx: Any) -> Any:
        """Run the command; a closed output pipe becomes `_PipeClosed` (exit 0)."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            # Click would turn EPIPE into exit status 1 before `main` sees it.
            raise _PipeClosed from exc


class _PipeClosed(Exception):
    """The reader of our output went away (`agentstore replay X | head -1`)."""


def _raise_broken_pipe(console: Console) -> None:
    console.quiet = True
    raise _PipeClosed


_DEBUG = [False]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _error_line(message: str) -> None:
    """Print `error: <message>` as one line on stderr (red on a colour terminal)."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    line = Text("error: ", style="bold red")
    line.append(clean(message))
    console.print(line)


def _report(exc: BaseException) -> int:
    """Print an exception as one line (plus a traceback with --debug); return the exit code."""
    from typer._click import exceptions as click_exc  # Typer vendors Click

    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, click_exc.NoArgsIsHelpError):
        return exc.exit_code  # the help was printed already
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if _DEBUG[0] and not isinstance(exc, click_exc.ClickException):
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, click_exc.UsageError):
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _error_line(f"{exc.format_message()}{hint}")
        return 2
    if isinstance(exc, click_exc.ClickException):
        _error_line(exc.format_message())
        return exc.exit_code
    if isinstance(exc, typer.Abort):
        _error_line("aborted")
        return 1
    if isinstance(exc, CliError):
        _error_line(exc.message)
        return exc.exit_code
    if isinstance(exc, AmbiguousSessionError):
        _error_line(str(exc))
        return 1
    if isinstance(exc, InvalidInputError):
        _error_line(str(exc))
        return 2
    if isinstance(exc, AgentStoreError):
        _error_line(str(exc))
        return 1
    if isinstance(exc, BrokenPipeError | _PipeClosed):
        # The reader went away (`agentstore replay X | head`): not an error of ours.
        # Point stdout at /dev/null so that the interpreter's final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    if isinstance(exc, OSError):
        _error_line(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return 1
    if isinstance(exc, Exception):
        _error_line(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug for details")
        return 1
    raise exc


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agentstore {agentstore.__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=AgentstoreGroup,
    name="agentstore",
    help=_HELP,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            readable=False,  # checked by open_store, with a message in CLI words
            envvar=DATA_DIR_ENV,
            help="Data directory of the store.",
        ),
    ] = Path(DEFAULT_DATA_DIR),
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            metavar="URL",
            envvar="AGENTSTORE_STORE",
            help="A store URL (postgresql://...) to use instead of the data directory.",
        ),
    ] = None,
    read_store: Annotated[
        str | None,
        typer.Option(
            "--read-store",
            metavar="URL",
            envvar="AGENTSTORE_READ_STORE",
            help="A read replica of --store for replays and listings.",
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar=DEBUG_ENV, help="Show a traceback when a command fails."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    _DEBUG[0] = debug
    source = ctx.get_parameter_source("data_dir")
    origin = {"COMMANDLINE": "flag", "ENVIRONMENT": "env"}.get(
        getattr(source, "name", ""), "default"
    )
    if origin == "flag" and store is not None:
        # An explicit --data-dir beats a store from the environment; both given is a
        # mistake that must not quietly pick one.
        if _given(ctx, "store"):
            raise CliError("give --data-dir or --store, not both", 2)
        store = None
        read_store = read_store if _given(ctx, "read_store") else None
    if read_store is not None and store is None:
        raise CliError("--read-store needs --store (the primary it is a replica of)", 2)
    ctx.obj = GlobalOptions(
        data_dir=data_dir, debug=debug, data_dir_from=origin, store=store, read_store=read_store
    )


def _given(ctx: typer.Context, name: str) -> bool:
    """Tell whether the option `name` was given on the command line (not by env/default)."""
    return getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"


def _load(target: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    func: Callable[..., Any] = getattr(importlib.import_module(module_name), attr)
    return func


_TARGETS = dict(COMMANDS)


def _build(name: str, target: str) -> Any:
    """Import a command's module and build its Click command (as `app.command` would)."""
    func = _load(target)
    info = CommandInfo(name=name, cls=AgentstoreCommand, help=reflow(func.__doc__), callback=func)
    return get_command_from_info(
        info,
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )


app.add_typer(otel_app, name="otel")  # a command group: `agentstore otel export`


def main() -> NoReturn:
    """Entry point of the `agentstore` console script."""
    app(prog_name="agentstore")
    sys.exit(0)  # pragma: no cover - app() always exits
