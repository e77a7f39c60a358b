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
# AWS_LAMBDA_EXEC_WRAPPER, as on Lambda's managed runtimes, names a script that the runtime is started through:
# WRAPPER python3 -m fastric [HANDLER] (also under the emulator, when a handler is known and no emulator options
# are given). A missing or non-executable wrapper exits 127 or 126, with the managed runtimes' messages.
set -eu

python="${FASTRIC_PYTHON:-python3}"
wrapper="${AWS_LAMBDA_EXEC_WRAPPER-}"

check_wrapper() {
    if [ ! -f "$wrapper" ]; then
        echo "$wrapper: does not exist" >&2
        exit 127
    fi
    if [ ! -x "$wrapper" ]; then
        echo "$wrapper: is not an executable" >&2
        exit 126
    fi
}

case "${1-}" in
    "" | -*) ;;
    *) export _HANDLER="$1" ;;
esac

if [ -n "${AWS_LAMBDA_RUNTIME_API-}" ]; then
    if [ -n "$wrapper" ]; then
        check_wrapper
        exec "$wrapper" "$python" -m fastric "$@"
    fi
    exec "$python" -m fastric "$@"
fi
if [ -n "$wrapper" ] && [ -n "${_HANDLER-}" ]; then
    case "${1-}" in
        -*) ;;
        *)
            check_wrapper
            exec "$python" -m fastric emulate --host 0.0.0.0 --port 8080 -- "$wrapper" "$python" -m fastric "$_HANDLER"
            ;;
    esac
fi
exec "$python" -m fastric emulate --host 0.0.0.0 --port 8080 "$@"
