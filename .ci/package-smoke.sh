#!/usr/bin/env bash
# Packs everything with pack.sh (Dsl.Runtime, Dsl.Training, Dsl.Generator, the nnc tool) and builds a fresh user project from those packages alone:
# proves that the generator package carries its dependencies (Dsl.Compiler, Sprache) and its props, that
# Dsl.Training brings its own (Spectre.Console) where Dsl.Runtime brings none, and that a .nn error fails
# the user's build with the error located in the .nn file.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The packaging a user follows (README: "Using it in a project"): pack.sh writes every package to one folder.
bash "$repo/pack.sh" "$work/feed"
for package in Dsl.Generator Dsl.Runtime Dsl.Training Dsl.Cli; do
  # Read whole before grep -q: with pipefail, a grep that stops early would fail the pipe.
  nuspec="$(unzip -p "$work/feed/$package.0.1.0.nupkg" "$package.nuspec")"
  files="$(unzip -l "$work/feed/$package.0.1.0.nupkg")"
  grep -q '<license type="expression">MIT</license>' <<< "$nuspec" || { echo "package smoke test: $package has no license expression" >&2; exit 1; }
  grep -q '<readme>README.md</readme>' <<< "$nuspec" && grep -q ' README.md$' <<< "$files" || { echo "package smoke test: $package has no readme" >&2; exit 1; }
done
if grep -q Spectre <<< "$(unzip -p "$work/feed/Dsl.Runtime.0.1.0.nupkg" Dsl.Runtime.nuspec)"; then
  echo "package smoke test: Dsl.Runtime depends on Spectre.Console; only Dsl.Training should" >&2
  exit 1
fi

mkdir -p "$work/app/Models"
cat > "$work/app/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$work/feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
cat > "$work/app/App.csproj" <<'XML'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <RootNamespace>App</RootNamespace>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Dsl.Generator" Version="0.1.0" />
    <PackageReference Include="Dsl.Runtime" Version="0.1.0" />
    <PackageReference Include="Dsl.Training" Version="0.1.0" />
  </ItemGroup>
</Project>
XML
echo 'model Tiny(input: [3, 8, 8]) { conv(3, 4, 3, bias: false) -> bn2d -> relu -> global_avgpool -> linear(4, 2) }' > "$work/app/Models/tiny.nn"
cat > "$work/app/Program.cs" <<'CS'
var model = new App.Tiny(maxBatch: 2);
var output = new float[2 * App.Tiny.OutputLength];
var outputGrad = new float[output.Length];
var sgd = new Dsl.Training.Sgd(model, learningRate: 0.1f, momentum: 0.9f);
model.Forward(new float[2 * App.Tiny.InputLength], output, 2);
float loss = Dsl.Training.Losses.CrossEntropy(output, [0, 1], outputGrad);
model.Backward(outputGrad);
sgd.Step(model);
model.Infer(new float[2 * App.Tiny.InputLength], output, 2);
System.Console.WriteLine($"package smoke test: Tiny has {App.Tiny.ParameterCount} parameters, one SGD step from loss {loss:F3}");
System.Console.Write(model.Summary());
CS

cd "$work/app"
# A private package folder, so a stale cached 0.1.0 from an earlier pack is never used.
dotnet restore --packages "$work/packages" --nologo -v q
dotnet run --no-restore

# The nnc tool, installed from the same folder as README says (a tool path instead of --global, to leave the machine as it was).
dotnet tool install Dsl.Cli --version 0.1.0 --tool-path "$work/tools" --add-source "$work/feed"
"$work/tools/nnc" check Models/tiny.nn
grep -q 'Total params: 126 ' <<< "$("$work/tools/nnc" summary Models/tiny.nn)" || { echo "package smoke test: nnc summary did not print the table" >&2; exit 1; }
sed -i 's/linear(4, 2)/linear(5, 2)/' Models/tiny.nn
if dotnet build --no-restore --nologo -v q > "$work/build.log" 2>&1; then
  echo "package smoke test: a wrong .nn file built without error" >&2
  exit 1
fi
grep -q "tiny.nn(1,103): error NN1011: 'linear' expects 5 input features but receives 4" "$work/build.log" || { cat "$work/build.log" >&2; exit 1; }
if grep -q "error CS" "$work/build.log"; then
  echo "package smoke test: a .nn error cascaded into C# errors" >&2
  grep "error CS" "$work/build.log" >&2
  exit 1
fi
echo "package smoke test: passed (build error located in tiny.nn, no C# cascade)"
