"""The ``troupe`` command: run operators, list plugins, print CRDs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

import pluggy
import yaml

from troupe.crd import build_crd, render
from troupe.engine.peering import peering_crds
from troupe.engine.runtime import RunSettings, run
from troupe.engine.selector import SelectorError, parse_selector
from troupe.engine.startup import STARTUP
from troupe.plugins import PluginError, collect_kinds, describe_plugins, get_plugin_manager


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="troupe", description="Troupe Kubernetes micro-operators.")
    sub = parser.add_subparsers(dest="command", required=True)

    run_p = sub.add_parser("run", help="run one or more operators")
    run_p.add_argument("operators", nargs="+", metavar="OPERATOR", help="operator plugin(s), e.g. workshop")
    scope = run_p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeat)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch all namespaces (default)")
    run_p.add_argument(
        "-l",
        "--selector",
        default="",
        help="only objects of the operators' kinds with these labels (kubectl's syntax: a=b,c!=d,e)",
    )
    run_p.add_argument("--standalone", action="store_true", help="no leader election (one replica only)")
    run_p.add_argument("--priority", type=int, help="peering priority (default: random, never equal)")
    run_p.add_argument("--metrics-port", type=int, default=8080, help="/metrics, /healthz, /readyz port")
    run_p.add_argument("--verbose", "-v", action="store_true", help="debug logging")

    sub.add_parser("plugins", help="list installed plugins and the kinds they serve")

    crds_p = sub.add_parser("crds", help="print the CRDs of operator(s) as YAML")
    crds_p.add_argument("operators", nargs="+", metavar="OPERATOR")
    crds_p.add_argument("--peering", action="store_true", help="include kopf's peering CRDs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    STARTUP.mark("imports")
    try:
        pm = get_plugin_manager()
        STARTUP.mark("plugins")
        if args.command == "plugins":
            return _plugins(pm)
        if args.command == "crds":
            docs = [build_crd(k) for k in collect_kinds(pm, args.operators)]
            sys.stdout.write(render(docs + (peering_crds() if args.peering else [])))
            return 0
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        )
        settings = RunSettings(
            operators=list(dict.fromkeys(args.operators)),
            namespaces=args.namespace,
            standalone=args.standalone,
            metrics_port=args.metrics_port,
            priority=args.priority,
            selector=args.selector,
        )
        parse_selector(settings.selector)  # fail fast on a selector that is not valid
        collect_kinds(pm, settings.operators)  # fail fast on an unknown operator
        asyncio.run(run(pm, settings))
    except (PluginError, SelectorError) as exc:
        print(f"troupe: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _plugins(pm: pluggy.PluginManager) -> int:
    listing = [row for row in describe_plugins(pm) if not row["name"].startswith("_")]
    sys.stdout.write(yaml.safe_dump(listing, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
