#!/usr/bin/env bash
# Installs the system packages the test suite drives: Debian's kcat (librdkafka 2.0.2),
# an old client that the interop tests use, and Debian's zookeeper (3.8; its jars in
# /usr/share/java), which the cluster tests start on loopback through
# odradek.testing.zookeeper. Not zookeeperd, which would add a system service.
# Debian's chromium and chromium-driver: the console's browser tests (tests/console/
# test_browser.py) and scripts/console_screenshots.py drive headless Chromium with
# selenium through /usr/bin/chromedriver.
# Needs root (or sudo) and apt-get.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
PACKAGES=(kcat zookeeper chromium chromium-driver)
# zookeeper itself depends on a JRE; the headless one is enough to run the server.
if ! command -v java >/dev/null 2>&1; then PACKAGES+=(default-jre-headless); fi
$SUDO apt-get install -y -qq "${PACKAGES[@]}" >/dev/null
command -v kcat
command -v java
test -f /usr/share/java/zookeeper.jar
test -x /usr/bin/chromium
test -x /usr/bin/chromedriver
