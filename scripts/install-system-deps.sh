#!/usr/bin/env bash
# Installs the system packages the test suite drives: Debian's kcat (librdkafka 2.0.2),
# an old client that the interop tests use. Needs root (or sudo) and apt-get.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq kcat >/dev/null
command -v kcat
