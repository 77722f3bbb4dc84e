#!/bin/sh
# Runs each cmocka unit test binary from the directory the tests expect
# (the repo root) and prints one summary line. Usage: run-unit.sh BUILD BIN...
set -u
build=$1; shift
pass=0; fail=0
for t in "$@"; do
	if CERTREG_BUILD="$build" "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
echo "unit test programs: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
