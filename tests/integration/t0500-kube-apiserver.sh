#!/usr/bin/env bash
# The Kubernetes API test server (tests/kube/apiserver.py) passes its own unit tests.
set -euo pipefail

SRC=${EG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$SRC/tests/kube"
python3 -m unittest -v test_apiserver
