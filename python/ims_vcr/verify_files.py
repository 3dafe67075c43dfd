"""`python -m ims_vcr.verify_files FILE...`: the entry of the `ims-vcr-verify` pre-commit hook.

`ims-vcr verify` checks a folder of cassettes; pre-commit passes the changed files. This runs
`ims-vcr verify FOLDER --require-redaction` once for each folder holding a changed file (a folder
inside another one on the list is covered by it: verify reads subfolders as sessions), prints its
findings, and exits 3 if any verify found a problem (1 if one could not run), else 0.

Options are passed on to every verify: --deny VALUE, --deny-file FILE, --config FILE (repeatable
where verify allows it); --no-require-redaction drops --require-redaction.
"""

import argparse
import os
import subprocess
import sys

from ims_vcr._binary import find_binary


def folders(files):
    """The folders holding `files`, without those inside another folder of the list."""
    dirs = sorted({os.path.dirname(os.path.abspath(f)) for f in files})
    kept = []
    for d in dirs:
        if not any(d == k or d.startswith(k.rstrip(os.sep) + os.sep) for k in kept):
            kept.append(d)
    return kept


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m ims_vcr.verify_files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", help="changed cassette files")
    parser.add_argument("--deny", action="append", default=[], metavar="VALUE")
    parser.add_argument("--deny-file", action="append", default=[], metavar="FILE")
    parser.add_argument("--config", metavar="FILE")
    parser.add_argument(
        "--no-require-redaction",
        action="store_true",
        help="do not require a redaction stamp on every cassette",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not args.files:
        return 0
    try:
        binary = find_binary()
    except FileNotFoundError as e:
        print(f"ims_vcr.verify_files: {e}", file=sys.stderr)
        return 1
    extra = []
    if not args.no_require_redaction:
        extra.append("--require-redaction")
    for value in args.deny:
        extra += ["--deny", value]
    for file in args.deny_file:
        extra += ["--deny-file", file]
    if args.config:
        extra += ["--config", args.config]
    worst = 0
    for folder in folders(args.files):
        shown = os.path.relpath(folder)
        sys.stdout.flush()
        code = subprocess.call([binary, "verify", shown, *extra])
        if code == 3:
            worst = worst or 3
        elif code != 0:
            print(f"ims_vcr.verify_files: ims-vcr verify {shown} exited with {code}", file=sys.stderr)
            worst = 1
    return worst


if __name__ == "__main__":
    sys.exit(main())
