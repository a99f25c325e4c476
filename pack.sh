#!/usr/bin/env bash
# Packs everything a user installs into one local folder (default: ./artifacts/packages):
#   Dsl.Generator, Dsl.Runtime, Dsl.Training (NuGet packages), Dsl.Cli (the `nnc` dotnet tool), Dsl.Templates (`dotnet new`).
# Then point a nuget.config at that folder (README: "Using it in a project"). CI's .ci/package-smoke.sh and
# .ci/template-smoke.sh consume exactly this script's output.
set -euo pipefail
repo="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-$repo/artifacts/packages}" && cd "${1:-$repo/artifacts/packages}" && pwd)"
for project in src/Dsl.Runtime src/Dsl.Training generators/Dsl.Generator src/Dsl.Cli templates/Dsl.Templates; do
  dotnet pack "$repo/$project" -c Release -o "$out" --nologo -v q -warnaserror
done
echo "pack.sh: packages in $out:"
ls -1 "$out"
