#!/usr/bin/env python3
"""Re-create the expected files of the golden tests from a real libvirt daemon.

    python tests/golden/regenerate.py            # all cases
    python tests/golden/regenerate.py NAME...    # only these (NAME or NAME.in.xml)
    python tests/golden/regenerate.py --check    # compare, write nothing

For every tests/golden/<name>.in.xml the local libvirt daemon (qemu:///system,
or $LIBVIRT_DEFAULT_URI) defines the domain under a temporary name, and
`virsh dumpxml --inactive` is written to <name>.libvirt.xml; when libvirt
refuses the domain, its error message goes to <name>.libvirt-error.txt
instead.  The stale file of the other kind is removed.  The oracle cache is not
used: this always asks the daemon.

The daemon's host matters to a few refusals (``host-*`` cases: KVM for another arch,
swtpm, SEV, SPICE TLS, SGX): tests/test_golden.py plans with the host they were made on,
an x86_64 machine with KVM, without swtpm, SEV or SGX, SPICE TLS off in qemu.conf
(``pciplan.hostcaps``).

Exit status: 0 when done (or, with --check, when every file is up to date),
1 when --check found a difference, 2 when no daemon answers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from support import libvirt_oracle  # noqa: E402


def expected_files(inp: Path) -> tuple[Path, Path]:
    name = inp.name[: -len(".in.xml")]
    return inp.with_name(f"{name}.libvirt.xml"), inp.with_name(f"{name}.libvirt-error.txt")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--check", action="store_true", help="only report what would change")
    a = ap.parse_args(argv)
    if not libvirt_oracle.available():
        print(f"regenerate: {libvirt_oracle.unavailable_reason()}", file=sys.stderr)
        return 2
    if a.names:
        inputs = [HERE / (n if n.endswith(".in.xml") else f"{n}.in.xml") for n in a.names]
        missing = [p for p in inputs if not p.exists()]
        if missing:
            print(f"regenerate: no such case: {', '.join(p.name for p in missing)}", file=sys.stderr)
            return 2
    else:
        inputs = sorted(HERE.glob("*.in.xml"))
    oracle = libvirt_oracle.Oracle(cache_dir=False)
    changed = 0
    for inp in inputs:
        ok, text = oracle.run(inp.read_text())
        good, bad = expected_files(inp)
        if not ok:
            good, bad = bad, good
            text = text.strip() + "\n"
        old = good.read_text() if good.exists() else None
        state = "same" if old == text and not bad.exists() else ("new" if old is None else "changed")
        if state != "same":
            changed += 1
            print(f"{state:8s} {good.name}")
            if not a.check:
                good.write_text(text)
                if bad.exists():
                    bad.unlink()
    print(f"{len(inputs)} cases, {changed} {'would change' if a.check else 'written'}")
    return 1 if a.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
