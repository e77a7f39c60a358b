#!/bin/sh
# fastric's container entrypoint, and a Lambda `bootstrap` (/var/runtime/bootstrap, provided.al2023).
#
#   lambda-entrypoint.sh [HANDLER | emulator arguments...]
#
# On Lambda, where AWS_LAMBDA_RUNTIME_API is set, it runs the runtime loop: python3 -m fastric [HANDLER].
# Anywhere else (`docker run -p 9000:8080 IMAGE` on a laptop) it serves the function on port 8080 through
# fastric's emulator, RIE-compatible: python3 -m fastric emulate --host 0.0.0.0 --port 8080 [HANDLER].
# With no HANDLER both read $_HANDLER, which Lambda sets from the function's configuration; a HANDLER given
# is exported as $_HANDLER, as AWS's base images do. FASTRIC_PYTHON names the interpreter fastric is
# installed in, when that is not the first python3 on PATH (e.g. python3.12 on Amazon Linux 2023).
set -eu

python="${FASTRIC_PYTHON:-python3}"

case "${1-}" in
    "" | -*) ;;
    *) export _HANDLER="$1" ;;
esac

if [ -n "${AWS_LAMBDA_RUNTIME_API-}" ]; then
    exec "$python" -m fastric "$@"
fi
exec "$python" -m fastric emulate --host 0.0.0.0 --port 8080 "$@"
