"""Run virt-install on many command lines in one process (for virtinstallprobe.py).

    /usr/bin/python3 virtinstall_driver.py [VIRT_MANAGER_DIR] < argvs.json > results.jsonl

Runs under virt-install's own interpreter (the one of its ``#!`` line), not pciplan's:
it imports virt-manager's ``virtinst`` package from VIRT_MANAGER_DIR (default
/usr/share/virt-manager, where Debian's virt-install finds it) and calls
``virtinstall.main`` once per command line, as virt-install's own test suite does, on
one libvirt connection.  That is the code ``virt-install ARGS`` runs, without the
interpreter start and the imports (about 0.6 s) for each command line.

Input: a JSON list of argument lists (without the program name).  Output: one JSON line
per argument list, in order, as soon as it is done: ``{"rc": exit status, "out":
standard output, "err": standard error}``.  A command line that takes longer than
TIMEOUT seconds gets rc 124.  Only the standard library and virtinst are used.
"""

import io
import json
import signal
import sys

TIMEOUT = 60


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def main():
    sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "/usr/share/virt-manager")
    from virtinst import cli, virtinstall

    argvs = json.load(sys.stdin)
    real_out, real_err = sys.stdout, sys.stderr
    conns = {}
    signal.signal(signal.SIGALRM, _alarm)
    for argv in argvs:
        out, err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = out, err
        sys.argv = ["virt-install"] + list(argv)
        signal.alarm(TIMEOUT)
        try:
            uri = argv[argv.index("--connect") + 1] if "--connect" in argv else None
            if uri not in conns:
                conns[uri] = cli.getConnection(uri)
            rc = virtinstall.main(conn=conns[uri])
        except SystemExit as ex:
            rc = ex.code if isinstance(ex.code, int) else 1
        except _Timeout:
            rc = 124
            print(f"ERROR    virt-install took longer than {TIMEOUT}s", file=err)
        except Exception as ex:  # what virt-install's runcli reports as its failure
            rc = 1
            print(f"ERROR    {ex}", file=err)
        finally:
            signal.alarm(0)
            sys.stdout, sys.stderr = real_out, real_err
        real_out.write(json.dumps({"rc": rc or 0, "out": out.getvalue(), "err": err.getvalue()}) + "\n")
        real_out.flush()


if __name__ == "__main__":
    main()
