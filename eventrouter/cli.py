"""``python -m eventrouter run | invoke | routes | schedules | replay | usage``."""

from __future__ import annotations

import argparse
import asyncio
import difflib
import os
import signal
import socket
import sys
import time
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import msgspec
import structlog

from eventrouter import __version__
from eventrouter.errors import ConfigError, EventRouterError, FunctionError, FunctionNotFound
from eventrouter.loader import load_router
from eventrouter.observability.logging import configure_logging, flush_logs
from eventrouter.observability.usage import parse_span, read_usage, usage_table
from eventrouter.router import FunctionSpec, Router
from eventrouter.runtime.engine import DEFAULT_GRACE, DEFAULT_STATE_DIR, Engine
from eventrouter.sources.schedule.expressions import to_instant
from eventrouter.sources.schedule.report import schedules_report
from eventrouter.sources.schedule.starter import schedule_ledger
from eventrouter.supervisor import (
    Supervisor,
    as_worker,
    tell_ready,
    worker_count,
    worker_index,
)

log = structlog.get_logger("eventrouter")
UTC_ZONE = ZoneInfo("UTC")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eventrouter",
        description="Run Lambda-style event handlers.",
        epilog="Every option can also come from the environment: --state-dir from "
        "EVENTROUTER_STATE_DIR, --http from EVENTROUTER_HTTP... (EVENTROUTER_ and the option's "
        "name in capitals, '-' as '_'; flags take 1/true/yes or 0/false/no). The command "
        "line wins.",
    )
    parser.add_argument("--version", action="version", version=f"eventrouter {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--state-dir", help="folder of the durable queue (default .eventrouter)")
        p.add_argument(
            "--log-format",
            choices=["auto", "console", "json"],
            default="auto",
            help="auto (default): console lines on a terminal, JSON lines otherwise",
        )
        p.add_argument(
            "--log-level",
            default="info",
            help="debug, info (default), warning, error or critical",
        )

    run = sub.add_parser("run", help="serve the functions until SIGINT / SIGTERM")
    run.add_argument("target", nargs="?", help="module:router (default: the handlers package)")
    run.add_argument(
        "--http",
        metavar="HOST:PORT",
        help=f"serve the HTTP routes, the Invoke API, /dashboard and /metrics here (default "
        f"{DEFAULT_HTTP}; port 0 picks a free port)",
    )
    run.add_argument(
        "--no-http", action="store_true", help="serve no HTTP (pull sources and schedules only)"
    )
    run.add_argument(
        "--server",
        choices=["uvicorn", "eventrouter"],
        default="eventrouter",
        help="the HTTP server: eventrouter's own (default: httptools, no ASGI server in "
        "between) or uvicorn (router.asgi() served as any ASGI app)",
    )
    run.add_argument("--uds", metavar="PATH", help="serve HTTP on this Unix domain socket")
    run.add_argument("--ssl-certfile", metavar="FILE", help="serve HTTPS with this certificate")
    run.add_argument("--ssl-keyfile", metavar="FILE", help="...and this private key")
    run.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve /metrics and /dashboard alone on this address too (open to whoever "
        "reaches it: bind it to loopback or an internal network)",
    )
    run.add_argument(
        "--workers",
        metavar="N",
        help="worker processes sharing the port and the state dir, under a supervisor that "
        "replaces one that dies and restarts them one by one on SIGHUP (auto: one per CPU; "
        "without --workers: one router process, no supervisor)",
    )
    run.add_argument(
        "--reload",
        action="store_true",
        help="restart the workers when a Python file under the current folder changes",
    )
    run.add_argument(
        "--reload-dir",
        action="append",
        metavar="DIR",
        help="watch this folder instead of the current one (repeatable)",
    )
    # A worker of --workers: serve HTTP on this inherited listening socket.
    run.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    run.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE,
        help="seconds in-flight work may take to finish at shutdown (default 30)",
    )
    run.add_argument(
        "--enforce-permissions",
        action="store_true",
        help="check callers against resource policies and functions against their roles",
    )
    run.add_argument(
        "--credentials",
        metavar="FILE",
        help="access keys and API keys of HTTP callers (default: $EVENTROUTER_CREDENTIALS)",
    )
    common(run)

    invoke = sub.add_parser("invoke", help="invoke a function once")
    invoke.add_argument("name")
    invoke.add_argument("target", nargs="?", help="module:router (default: the handlers package)")
    invoke.add_argument("--payload", default="{}", help="JSON payload; - reads standard input")
    invoke.add_argument(
        "--async",
        dest="is_async",
        action="store_true",
        help="queue the event for a running router and print its request id",
    )
    common(invoke)

    routes = sub.add_parser("routes", help="list functions, sources and settings")
    routes.add_argument("target", nargs="?", help="module:router (default: the handlers package)")

    schedules = sub.add_parser(
        "schedules", help="each schedule: its next five fire times and its last fire"
    )
    schedules.add_argument(
        "target", nargs="?", help="module:router (default: the handlers package)"
    )
    common(schedules)

    replay = sub.add_parser(
        "replay", help="put a bus's archived events again, with replay-name set"
    )
    replay.add_argument("target", nargs="?", help="module:router (default: the handlers package)")
    replay.add_argument("--bus", required=True, help="the archived event bus")
    replay.add_argument(
        "--from", dest="start", required=True, help="ISO 8601 time or epoch seconds"
    )
    replay.add_argument("--to", dest="end", required=True, help="ISO 8601 time or epoch seconds")
    replay.add_argument("--rule", help="replay to this rule only")
    replay.add_argument("--name", help="the replay-name events carry (default replay-<time>)")
    common(replay)

    usage = sub.add_parser(
        "usage", help="requests, GB-seconds and what Lambda would have charged, per function"
    )
    usage.add_argument("--since", default="24h", help="how far back: 90m, 24h, 7d (default 24h)")
    usage.add_argument("--state-dir", help="the router's state dir (default .eventrouter)")
    usage.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for command in _subparsers(parser).values():
        _defaults_from_environment(command)
    return parser


#: Where ``run`` serves HTTP unless told otherwise.
DEFAULT_HTTP = "127.0.0.1:8000"
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def env_name(option: str) -> str:
    """``--state-dir`` → ``EVENTROUTER_STATE_DIR``: the one rule for every option."""
    return "EVENTROUTER_" + option.lstrip("-").upper().replace("-", "_")


def _defaults_from_environment(parser: argparse.ArgumentParser) -> None:
    """Take each option's default from its environment variable, when set."""
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs or action.help == argparse.SUPPRESS or action.dest == "help":
            continue
        name = env_name(longs[0])
        raw = os.environ.get(name)
        if raw is None:
            continue
        value: Any = raw
        if isinstance(action, argparse._StoreTrueAction):
            if raw.lower() not in (*_TRUE, *_FALSE):
                raise ConfigError(f"{name}={raw!r}: use 1/true/yes or 0/false/no")
            value = raw.lower() in _TRUE
        elif isinstance(action, argparse._AppendAction):
            value = [part for part in raw.split(os.pathsep) if part]
        elif action.choices is not None and raw not in action.choices:
            raise ConfigError(f"{name}={raw!r} is not one of {', '.join(map(str, action.choices))}")
        elif action.type is not None:
            try:
                value = action.type(raw)  # type: ignore[operator]
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{name}={raw!r}: {exc}") from exc
        parser.set_defaults(**{action.dest: value})


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, options and positionals in any order (``invoke --async NAME
    mod:router`` as well as ``invoke NAME mod:router --async``)."""
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _subparsers(parser)
    at = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), None)
    if at is None or argv[at] not in commands:
        return parser.parse_args(argv)  # help, or an error naming the commands
    if any(arg in ("-h", "--help") for arg in argv[:at]):
        parser.parse_args(argv[:at])
    args = commands[argv[at]].parse_intermixed_args(argv[at + 1 :])
    args.command = argv[at]
    return args


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "routes":
            print(routes_table(load_router(args.target)))
            return 0
        if args.command == "usage":
            return _usage(args)
        configure_logging(args.log_format, args.log_level)
        # --workers (even 1) or --reload: a supervisor (rolling restarts on SIGHUP).
        if args.command == "run" and (args.workers is not None or args.reload):
            return _supervise(args, list(sys.argv[1:] if argv is None else argv))
        worker, workers = worker_index()
        if args.command == "run" and workers > 1:
            # A worker of several: each of its log lines says which (REPORT lines excepted).
            structlog.contextvars.bind_contextvars(worker=worker)
        router = load_router(args.target)
        if args.command == "run":
            return anyio.run(_serve, router, args, backend_options=_loop_options())
        if args.command == "schedules":
            return anyio.run(_schedules, router, args)
        if args.command == "replay":
            return anyio.run(_replay, router, args)
        return anyio.run(_invoke, router, args)
    except (EventRouterError, OSError, ValueError) as exc:
        flush_logs()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        flush_logs()


def _loop_options() -> dict[str, Any]:
    """uvloop when it is installed (it is by default on Linux and macOS)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


async def _serve(router: Router, args: argparse.Namespace) -> int:
    as_worker()
    if args.enforce_permissions:
        router.enforce_permissions = True
    if args.credentials:
        router.credentials = args.credentials
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise ConfigError("--ssl-certfile and --ssl-keyfile go together")
    worker, workers = worker_index()
    address = _http_address(args)
    engine = Engine(
        router,
        state_dir=args.state_dir,
        http=f"unix:{address}" if args.uds else address,
        http_socket=socket.socket(fileno=args.fd) if args.fd is not None else None,
        worker=worker,
        workers=workers,
        tls=(args.ssl_certfile, args.ssl_keyfile) if args.ssl_certfile else None,
        grace=args.grace,
        metrics_http=args.metrics,
        server=args.server,
    )
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        await engine.start()
        tell_ready()
        async for signum in signals:
            log.info("stopping", signal=signal.Signals(signum).name, grace=args.grace)
            break
    await engine.shutdown(grace=args.grace)
    return 0


#: Options of ``run`` that are the supervisor's, not its workers': (name, takes a value).
_SUPERVISOR_OPTIONS = {"--workers": True, "--reload": False, "--reload-dir": True}


def _without(argv: list[str], options: dict[str, bool]) -> tuple[list[str], list[str]]:
    """``argv`` without ``options`` (and their values); and what was taken out."""
    kept: list[str] = []
    taken: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            taken.append(arg)
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in options:
            taken.append(arg)
            skip = options[name] and "=" not in arg
            continue
        kept.append(arg)
    return kept, taken


def _supervise(args: argparse.Namespace, argv: list[str]) -> int:
    """``run --workers N`` / ``--reload``: bind the HTTP socket, run the workers."""
    from eventrouter.http.server import listen_on, parse_address

    workers = worker_count(args.workers or "1")
    address = _http_address(args)
    listener = None
    if args.uds:
        listener = listen_on("", 0, args.uds)
    elif address is not None:
        listener = listen_on(*parse_address(address))
    worker_argv, _ = _without(argv, _SUPERVISOR_OPTIONS)
    worker_argv, metrics = _without(worker_argv, {"--metrics": True})
    if args.metrics and not metrics:  # from EVENTROUTER_METRICS: worker 0's alone
        metrics = ["--metrics", args.metrics]
    dirs = (args.reload_dir or [os.getcwd()]) if args.reload else []
    if listener is not None and not args.uds:
        host, port = listener.getsockname()[:2]
        log.info("http listening", url=f"http://{host}:{port}", workers=workers)
    supervisor = Supervisor(
        worker_argv,
        workers,
        args.grace,
        listener,
        dirs,
        metrics,
        # Their environment variables too: a worker given EVENTROUTER_WORKERS would supervise.
        not_inherited=[env_name(o) for o in (*_SUPERVISOR_OPTIONS, "--metrics")],
    )
    try:
        return asyncio.run(supervisor.run())
    finally:
        if listener is not None:
            listener.close()


def _http_address(args: argparse.Namespace) -> str | None:
    """Where ``run`` serves HTTP: ``--uds``, ``--http``, the default, or nowhere."""
    if args.uds and args.http:
        raise ConfigError("--http and --uds: one address, please")
    if args.no_http:
        return None
    return str(args.uds or args.http or DEFAULT_HTTP)


def _usage(args: argparse.Namespace) -> int:
    since = time.time() - parse_span(args.since)
    usage = read_usage(args.state_dir or DEFAULT_STATE_DIR, since)
    if args.json:
        print(msgspec.json.encode(usage).decode())
    else:
        print(usage_table(usage))
    return 0


async def _invoke(router: Router, args: argparse.Namespace) -> int:
    if args.name not in router.functions and ":" not in args.name:
        names = sorted(router.functions)
        close = difflib.get_close_matches(args.name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise FunctionNotFound(
            f"router {router.name!r} has no function {args.name!r}{hint}; "
            f"its functions: {', '.join(names)}"
        )
    raw = sys.stdin.read() if args.payload == "-" else args.payload
    payload = raw.encode()
    async with Engine(router, state_dir=args.state_dir, consume=False) as engine:
        if args.is_async:
            print(await engine.invoke_async(args.name, payload))
            return 0
        outcome = await engine.invoke_outcome(args.name, payload)
        try:
            engine.result(outcome)
        except FunctionError as exc:
            print(msgspec.json.encode(exc.body).decode())
            return 1
        assert outcome.response is not None
        print(outcome.response.decode())
        return 0


async def _schedules(router: Router, args: argparse.Namespace) -> int:
    async with Engine(router, state_dir=args.state_dir, consume=False) as engine:
        states = await (await schedule_ledger(engine)).states()
    print(schedules_report(router, states, time.time()))
    return 0


async def _replay(router: Router, args: argparse.Namespace) -> int:
    start = to_instant(args.start, UTC_ZONE, "--from")
    end = to_instant(args.end, UTC_ZONE, "--to")
    name = args.name or f"replay-{int(time.time())}"
    async with Engine(router, state_dir=args.state_dir, consume=False) as engine:
        events, invocations = await engine.buses.replay(
            args.bus, start, end, rule=args.rule, name=name
        )
    print(f"{name}: {events} events replayed, {invocations} invocations queued")
    return 0


def _describe(destination: Any) -> str:
    return "-" if destination is None else str(destination.describe())


def routes_table(router: Router) -> str:
    """A plain-text table of the router's functions."""
    header = [
        "function",
        "source",
        "timeout",
        "reserved",
        "memory",
        "retries",
        "max_age",
        "on_success",
        "on_failure",
        "handler",
    ]
    rows = [header]
    for spec in sorted(router.functions.values(), key=lambda s: s.name):
        rows.append(_route_row(spec))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join([f"router {router.name!r}", *lines])


def _route_row(spec: FunctionSpec) -> list[str]:
    s = spec.settings
    # Retries and event age are rules of asynchronous invocation: they mean something for a
    # function invoked directly or fed by an embedded queue, not one behind an HTTP route
    # or a polled source (whose retries are the source's own settings).
    queued = spec.source is None or spec.source.model == "async"
    return [
        spec.name,
        spec.source.describe() if spec.source is not None else "invoke",
        f"{s.timeout:g}s",
        "-" if s.reserved_concurrency is None else str(s.reserved_concurrency),
        f"{s.memory_mb}MB",
        str(s.max_retries) if queued else "-",
        f"{s.max_event_age:g}s" if queued else "-",
        _describe(s.on_success),
        _describe(s.on_failure),
        f"{spec.module}.{getattr(spec.handler, '__qualname__', '?')}"
        + ("" if spec.is_async else " (thread)"),
    ]
