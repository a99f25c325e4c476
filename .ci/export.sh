#!/usr/bin/env bash
# nnc export, checked by the real engines (issue 18). Installs Debian's python3-torch and python3-onnx if missing
# (.ci/python-torch.sh), then:
#   1. exports every golden model (tests/Golden/<case>.safetensors, its .nn in tests/Dsl.Models.Tests/Golden/) with
#      nnc export pytorch and nnc export onnx (the bundle's initial state as --weights);
#   2. PyTorch (/usr/bin/python3) imports each module, loads the bundle with load_safetensors, replays its training
#      passes and eval, and compares every output, gradient and buffer within the parity contract; onnx.checker
#      validates each .onnx file (tests/Export/check_pytorch.py);
#   3. the .NET export tests: ONNX Runtime against Infer on every golden model, the dotted-name graph's keys and
#      outputs in PyTorch, the CLI's errors (tests/Dsl.Compiler.Tests: ExportTests, TorchExportTests);
#   4. examples/ScaleOut's quick mode: DDP on 2 processes, then the C# class's accuracy on the same weights.
# Fails on any failure; ends with "export: N passed, N failed" (pytorch bundles + .NET tests + the round trip).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
start=$SECONDS
bash .ci/python-torch.sh
work="$(mktemp -d)"
log="$work/log"
trap 'rm -rf "$work"' EXIT

echo "== nnc export pytorch / onnx of the $(ls tests/Golden/*.safetensors | wc -l) golden models"
dotnet build src/Dsl.Cli -v quiet -nologo 2>&1 | grep -E "error|warn" || true
nnc=(dotnet src/Dsl.Cli/bin/Debug/net10.0/nnc.dll)
for bundle in tests/Golden/*.safetensors; do
  case=$(basename "$bundle" .safetensors)
  nn=tests/Dsl.Models.Tests/Golden/$case.nn
  "${nnc[@]}" export pytorch "$nn" -o "$work/$case.py" 2>/dev/null
  "${nnc[@]}" export onnx "$nn" --weights "$bundle" -o "$work/$case.onnx" 2>/dev/null
done

echo "== PyTorch replays the golden bundles; onnx.checker validates the ONNX files"
set +e
/usr/bin/python3 tests/Export/check_pytorch.py "$work" tests/Golden | tee "$log"
pytorch=${PIPESTATUS[0]}
set -e
passed=$( { grep -oE "^pytorch export: [0-9]+ passed" "$log" || echo 0; } | grep -oE "[0-9]+" | head -1)
failed=$(grep -oE ', [0-9]+ failed$' "$log" | grep -oE '[0-9]+' || echo 1)

echo "== .NET export tests (ONNX Runtime vs Infer, PyTorch keys and outputs, CLI errors)"
set +e
dotnet test tests/Dsl.Compiler.Tests --filter "FullyQualifiedName~ExportTests" --logger "console;verbosity=detailed" 2>&1 > "$log"
dotnet_tests=$?
set -e
grep -E "ONNX Runtime vs Infer|PyTorch eval vs Infer" "$log" | sed 's/^ *//' | sort -u
grep -E "^ *(Skipped|Failed) Dsl" "$log" || true
grep -E "^(Test Run|Total tests| +(Passed|Failed|Skipped):)" "$log" || true
# The detailed console logger closes with "Total tests: N", then "Passed: N", "Failed: N", "Skipped: N" (those not zero).
count() { awk -v key="$1:" '$1 == key { s += $2 } END { print s + 0 }' "$log"; }
passed=$(( passed + $(count Passed) ))
failed=$(( failed + $(count Failed) ))
skipped=$(count Skipped)
if [ "$dotnet_tests" -ne 0 ] && [ "$(count Failed)" -eq 0 ]; then failed=$((failed + 1)); fi  # a build or run failure

echo "== examples/ScaleOut --quick: DDP on 2 processes, back into C#"
set +e
bash examples/ScaleOut/run.sh --quick
scaleout=$?
set -e
if [ "$scaleout" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

status=0
if [ "$pytorch" -ne 0 ] || [ "$dotnet_tests" -ne 0 ] || [ "$scaleout" -ne 0 ] || [ "$skipped" -ne 0 ]; then status=1; fi
echo "export: $passed passed, $failed failed, $skipped skipped ($((SECONDS - start)) s)"
exit "$status"
