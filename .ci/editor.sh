#!/usr/bin/env bash
# The VS Code extension (editors/vscode): installs its dev dependencies from package-lock.json, tokenizes
# every .nn file of the repository with its grammar (vscode-textmate + vscode-oniguruma, node's test
# runner) and packages it as a .vsix with @vscode/vsce, checking what the package holds.
set -euo pipefail
cd "$(dirname "$0")/../editors/vscode"

if ! command -v npm > /dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm > /dev/null
fi

npm ci --no-audit --no-fund --loglevel=error
node --test test/
npx vsce package --allow-missing-repository --skip-license --out nn-language.vsix
for entry in extension/package.json extension/language-configuration.json extension/syntaxes/nn.tmLanguage.json; do
  node -e 'const z = require("fs").readFileSync(process.argv[1]); if (!z.includes(Buffer.from(process.argv[2]))) process.exit(1);' \
    nn-language.vsix "$entry" || { echo "editor: $entry is missing from nn-language.vsix" >&2; exit 1; }
done
echo "editor: nn-language.vsix packaged ($(( $(stat -c %s nn-language.vsix) / 1024 )) KiB)"
