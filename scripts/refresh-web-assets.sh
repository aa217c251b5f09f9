#!/usr/bin/env bash
# Refresh the web page's vendored JavaScript/CSS (and the test-only axe-core) from the npm registry.
# Versions are pinned here; run this, look at the diff, run the browser tests, commit. Node is needed only
# for this script (npm pack), never to run or test Hearth.
set -euo pipefail
cd "$(dirname "$0")/.."
MARKED=18.3.0
DOMPURIFY=3.5.0
HLJS=11.12.0
AXE=4.14.1
web=src/hearth/web/vendor
tests=tests/web/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unpack() {  # unpack NAME@VERSION into $tmp/NAME
  local dir="$tmp/$(echo "$1" | tr '/@' '__')"
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$1" >/dev/null && tar xzf ./*.tgz)
  echo "$dir/package"
}
p=$(unpack "marked@$MARKED");                 cp "$p/lib/marked.umd.js" "$web/"; cp "$p/LICENSE" "$web/marked.LICENSE"
p=$(unpack "dompurify@$DOMPURIFY");           cp "$p/dist/purify.min.js" "$web/"; cp "$p/LICENSE" "$web/dompurify.LICENSE"
p=$(unpack "@highlightjs/cdn-assets@$HLJS");  cp "$p/highlight.min.js" "$web/"; cp "$p/LICENSE" "$web/highlight.LICENSE"
cp "$p/styles/github.min.css" "$web/hljs-github.min.css"; cp "$p/styles/github-dark.min.css" "$web/hljs-github-dark.min.css"
p=$(unpack "axe-core@$AXE");                  cp "$p/axe.min.js" "$tests/"; cp "$p/LICENSE" "$tests/axe-core.LICENSE"
# the page loads nothing but these files: drop source-map comments (they would point at files not shipped)
sed -i '/^\/\/# sourceMappingURL=/d' "$web"/*.js
echo "refreshed: marked $MARKED, dompurify $DOMPURIFY, highlight.js $HLJS, axe-core $AXE"
