#!/usr/bin/env bash
# The project template: packs everything with pack.sh (Dsl.Runtime, Dsl.Training, Dsl.Generator, Dsl.Templates) to a local feed, installs the
# templates package with `dotnet new install` (into a private template hive), creates a project with
# `dotnet new nn-console -n MyNet`, and builds (warnings as errors) and runs it against the local feed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

bash "$repo/pack.sh" "$work/feed" # the packages a user gets from pack.sh, the templates package among them

hive="$work/hive" # a private hive: the machine's own `dotnet new` templates stay as they were
dotnet new install "$work/feed/Dsl.Templates.0.1.0.nupkg" --debug:custom-hive "$hive"
cd "$work"
dotnet new nn-console -n MyNet --debug:custom-hive "$hive"
cd MyNet
for file in MyNet.csproj Program.cs Models/Classifier.nn; do
  [ -f "$file" ] || { echo "template smoke test: $file was not created" >&2; exit 1; }
done
grep -q 'using MyNet;' Program.cs || { echo "template smoke test: the project name did not replace NnConsole" >&2; exit 1; }

cat > nuget.config <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$work/feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
# A private package folder, so a stale cached 0.1.0 from an earlier pack is never used.
dotnet restore --packages "$work/packages" --nologo -v q
dotnet build --no-restore --nologo -v q -warnaserror -c Release
dotnet run --no-build -c Release | tee "$work/run.txt"
last=$(grep -E '^epoch 5: ' "$work/run.txt" || true)
accuracy=$(sed -E 's/.*test accuracy ([0-9.]+).*/\1/' <<< "$last")
if [ -z "$last" ] || ! awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.9) }'; then
  echo "template smoke test: the template's network did not learn (want test accuracy ≥ 0.9 after 5 epochs)" >&2
  exit 1
fi
[ -f classifier.safetensors ] || { echo "template smoke test: classifier.safetensors not written" >&2; exit 1; }
echo "template smoke test: passed (dotnet new nn-console -n MyNet builds without warnings, trains to test accuracy $accuracy)"
