#!/bin/sh
# An environment holding AccelForge (github.com/Accelergy-Project/accelforge, MIT) for
# bench/accelforge_worker.py, apart from covenant's own: AccelForge wants Python >= 3.10 and pulls
# numba, islpy, sympy, pandas and the hwcomponents packages.
#
#     sh bench/setup_accelforge.sh [VENV]        # VENV defaults to /work/af-venv
#
# Then: VENV/bin/python bench/accelforge_worker.py spec tests/data/accelforge/examples/arches/simple.yaml
# Python: pyenv's 3.12.1 when present ($PYTHON overrides), else python3.12, else python3.
# graphviz (`dot`, which AccelForge's mapping drawings call) comes from apt-get when missing.
set -eu

VENV=${1:-/work/af-venv}
ACCELFORGE_VERSION=${ACCELFORGE_VERSION:-1.0.467}
if [ -z "${PYTHON:-}" ]; then
    for candidate in /root/.pyenv/versions/3.12.1/bin/python python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then PYTHON=$candidate; break; fi
    done
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "accelforge==$ACCELFORGE_VERSION"

if ! command -v dot >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update
    $SUDO apt-get install -y graphviz
fi

# hwcomponents-cacti ships a CACTI binary linked against a newer C library than some systems have
# (Debian 12: glibc 2.36, the binary wants 2.38); eyeriss and simba price their SRAMs with it. Rebuild
# it from the sources the package ships when it cannot start.
CACTI=$("$VENV/bin/python" -c "import hwcomponents_cacti, os; print(os.path.join(os.path.dirname(hwcomponents_cacti.__file__), 'cacti'))")
if [ -d "$CACTI" ] && (cd "$CACTI" && ./cacti 2>&1 | grep -q "not found"); then
    rm -rf "$CACTI/obj_dbg" "$CACTI/cacti"
    make -C "$CACTI" -j 2 >"$VENV/cacti-build.log" 2>&1 || { tail "$VENV/cacti-build.log"; exit 1; }
fi

"$VENV/bin/python" -c "import importlib.metadata as m, accelforge; print('accelforge', m.version('accelforge'))"
dot -V
