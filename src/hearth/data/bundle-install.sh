#!/bin/sh
# Install Hearth and the models of this bundle on a computer with no network.
#
#   sh install [VENV]
#
# VENV is where Hearth's virtual environment goes: the argument, else $HEARTH_VENV, else ~/.hearth/venv.
# PYTHON picks the interpreter (default python3); it must be the Python version the bundle was made with.
# Every file is checked against BUNDLE.json before anything is installed. The models go into
# $HEARTH_HOME (default ~/.hearth) with `hearth bundle import`.
set -eu

BUNDLE=$(cd "$(dirname "$0")" && pwd -P)
VENV=${1:-${HEARTH_VENV:-$HOME/.hearth/venv}}
PYTHON=${PYTHON:-python3}

say() { printf '%s\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON was not found: install Python 3 first (see $BUNDLE/README.md)"

"$PYTHON" - "$BUNDLE" <<'CHECK' || exit 1
import hashlib, json, os, platform, sys

root = sys.argv[1]


def fail(message):
    sys.stderr.write("install: " + message + "\n")
    sys.exit(1)


try:
    with open(os.path.join(root, "BUNDLE.json"), "rb") as handle:
        index = json.loads(handle.read().decode("ascii"))
except (OSError, ValueError):
    fail("this bundle is incomplete or damaged: BUNDLE.json is missing or unreadable "
         "(an export that did not finish?); export it again")
if index.get("format") != "hearth-bundle" or index.get("version") != 1:
    fail("BUNDLE.json is not a bundle this installer knows")
have = "%d.%d" % sys.version_info[:2]
if have != index["python"]:
    fail("the packages of this bundle are for Python %s, but %s is Python %s; run it as: PYTHON=python%s sh %s/install"
         % (index["python"], sys.executable, have, index["python"], root))
if sys.platform != index["os"] or platform.machine().lower() != index["machine"]:
    fail("the packages of this bundle are for %s on %s, this computer is %s on %s"
         % (index["os"], index["machine"], sys.platform, platform.machine().lower()))
bad, total = [], 0
for rel, entry in sorted(index["files"].items()):
    parts = rel.split("/")
    if ".." in parts or rel.startswith("/"):
        fail("BUNDLE.json names a file outside the bundle: " + rel)
    digest, size = hashlib.sha256(), 0
    try:
        with open(os.path.join(root, *parts), "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        bad.append(rel + " (missing or unreadable)")
        continue
    total += size
    if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
        bad.append(rel)
if bad:
    fail("%d file(s) failed their checksum, so nothing was installed:\n  %s\ncopy the bundle again, or export it again"
         % (len(bad), "\n  ".join(bad)))
print("Checked %d files (%.0f MB) against BUNDLE.json" % (len(index["files"]), total / 1e6))
CHECK

say "Creating the virtual environment $VENV"
"$PYTHON" -m venv "$VENV" || die "could not create $VENV (on Debian and Ubuntu: install python3-venv)"
say "Installing Hearth from $BUNDLE/wheels (no network)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-index \
    --find-links "$BUNDLE/wheels" --no-deps --requirement "$BUNDLE/wheels/requirements.txt" \
    || die "pip could not install the wheels (see its message above)"
say "Checking that the engine runs on this CPU"
"$VENV/bin/python" -m hearth.engine.selfcheck \
    || die "the engine does not run here: it was compiled for the CPU of the computer that made this bundle (see $BUNDLE/README.md)"
"$VENV/bin/hearth" bundle import "$BUNDLE"
say "Hearth is installed: $VENV/bin/hearth (add $VENV/bin to your PATH)"
