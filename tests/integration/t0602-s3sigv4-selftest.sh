#!/usr/bin/env bash
# The SigV4 verifier in front of s3rver (tests/lib/s3sigv4.py) checked against AWS's published
# S3 signing examples, and as a proxy in front of a recording server.
. "${EG_SOURCE_DIR:?set by ctest}/tests/lib/lib.sh" || exit 2

cd "$EG_SOURCE_DIR/tests/lib"
# unittest writes its report to stderr; keep it for a failure, and keep __pycache__ out of the tree
if ! PYTHONDONTWRITEBYTECODE=1 timeout 300 python3 -m unittest -v test_s3sigv4 >"$T/unittest.log" 2>&1; then
  cat "$T/unittest.log" >&2
  fail "s3sigv4 self-test failed"
fi
grep -q "^test_get_object_canonical_request_and_signature .* ok$" "$T/unittest.log" ||
  { cat "$T/unittest.log" >&2; fail "the AWS GET Object example did not run"; }
tail -n 3 "$T/unittest.log" >&2
echo "ok"
