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
    for name, command in (("preflight", preflight), ("drain", drain)):
        p = sub.add_parser(
            name, help=command.__doc__.split("\n")[0],
            description=command.__doc__.split("\n\n", 2)[2],
            formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_arguments(p)
        p.set_defaults(run=lambda args, c=command, p=p: c.run(args, p))
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    return args.run(args)
