#!/usr/bin/env bash
# NativeAOT: publishes examples/LeNet with the command a user types, fails on any warning (IL2xxx/IL3xxx
# trim and AOT warnings included), and checks that the native binary prints exactly what the JIT build
# prints. Ends with the binary's size and both start-up times (best of 5 runs of the whole program).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The ILCompiler links with clang and needs zlib; the package itself comes from NuGet at restore.
if ! command -v clang > /dev/null || ! dpkg -s zlib1g-dev > /dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang zlib1g-dev > /dev/null
fi

dotnet publish examples/LeNet -c Release -r linux-x64 -p:PublishAot=true --nologo 2>&1 | tee "$work/publish.log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo "aot: publish failed" >&2
  exit 1
fi
if grep -E ': warning [A-Z]+[0-9]+' "$work/publish.log"; then
  echo "aot: publish printed warnings (above)" >&2
  exit 1
fi

native="examples/LeNet/bin/Release/net10.0/linux-x64/publish/LeNet"
"$native" > "$work/aot.txt"
dotnet run --project examples/LeNet -c Release > "$work/jit.txt"
if ! diff -u "$work/jit.txt" "$work/aot.txt"; then
  echo "aot: the native binary's output differs from dotnet run's (diff above: - JIT, + AOT)" >&2
  exit 1
fi

# Start-up plus the whole run (10 training steps and inference): best of 5, in milliseconds.
best_ms() {
  local best=999999 start end ms
  for _ in 1 2 3 4 5; do
    start=$(date +%s%N)
    "$@" > /dev/null
    end=$(date +%s%N)
    ms=$(( (end - start) / 1000000 ))
    [ "$ms" -lt "$best" ] && best=$ms
  done
  echo "$best"
}
jit_dll="examples/LeNet/bin/Release/net10.0/LeNet.dll"
echo "aot: output identical to dotnet run ($(wc -l < "$work/aot.txt") lines)"
jit_kib=$(( $(cat examples/LeNet/bin/Release/net10.0/*.dll | wc -c) / 1024 ))
runtime_dir="$(dotnet --list-runtimes | sed -nE 's/^Microsoft\.NETCore\.App ([^ ]+) \[(.*)\]$/\2\/\1/p' | tail -1)"
echo "aot: native binary $(( $(stat -c %s "$native") / 1024 )) KiB, self-contained; JIT build: $jit_kib KiB of assemblies plus the shared runtime ($(du -sk "$runtime_dir" | cut -f1) KiB in $runtime_dir)"
echo "aot: whole run $(best_ms "$native") ms native, $(best_ms dotnet "$jit_dll") ms JIT (dotnet LeNet.dll), best of 5"
