"""The abiguard command: one program, a subcommand per task."""
import argparse
import sys

import abiguard
from abiguard import drain, preflight


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="abiguard", description=abiguard.__doc__.replace("\n", " "))
    ap.add_argument("--version", action="version",
                    version="abiguard " + abiguard.__version__)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser(
        "preflight", help=preflight.__doc__.split("\n")[0],
        description=preflight.__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    preflight.add_arguments(p)
    p.set_defaults(run=lambda args: preflight.run(args, p))
    d = sub.add_parser(
        "drain", help=drain.__doc__.split("\n")[0],
        description=drain.__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    drain.add_arguments(d)
    d.set_defaults(run=lambda args: drain.run(args, d))
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    return args.run(args)
