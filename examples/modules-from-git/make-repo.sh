#!/bin/sh
# Publishes upstream/ as a git repository with two releases, v1.0.0 and v1.1.0, at
# /tmp/flotilla-example-modules.git (a bare repository, as a git server would hold it).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=/tmp/flotilla-example-modules.git
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$repo"
cp -R "$here/upstream/." "$work/"
cd "$work"
git init -q
git config user.email example@flotilla.invalid
git config user.name example
echo "1.0.0" > edge-site/VERSION
git add -A && git commit -qm "edge-site 1.0.0" && git tag v1.0.0
echo "1.1.0" > edge-site/VERSION
git add -A && git commit -qm "edge-site 1.1.0" && git tag v1.1.0
git clone -q --bare "$work" "$repo"
echo "made $repo with tags: $(git --git-dir="$repo" tag | tr '\n' ' ')"
