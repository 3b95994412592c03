#!/bin/sh
# Entry point of the Cnn.Distributed image.
#   cnn ARGS...     the `cnn` CLI (coordinator, training, data, evaluation)
#   worker ARGS...  the worker host; CNN_* variables configure it (see deploy/README.md)
#   anything else   run as given
# A worker that binds every interface and has no CNN_PUBLIC_HOST announces the container's host name, which
# the other containers of a compose network resolve; each replica of a scaled service has its own.
set -eu
case "${1:-}" in
  cnn)
    shift
    exec dotnet /app/Cnn.Coordinator.dll "$@"
    ;;
  worker)
    shift
    if [ -z "${CNN_PUBLIC_HOST:-}" ] && { [ "${CNN_BIND_HOST:-}" = "0.0.0.0" ] || [ "${CNN_BIND_HOST:-}" = "::" ]; }; then
      CNN_PUBLIC_HOST="$(hostname)"
      export CNN_PUBLIC_HOST
    fi
    exec dotnet /app/Cnn.Worker.dll "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
