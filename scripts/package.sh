#!/usr/bin/env bash
# Builds the Debian package with cargo-deb: the release binary, the hardened systemd unit
# (dist/estuary.service, installed but not enabled), the docs, and a postinst that creates the
# `estuary` system user. Output: target/debian/estuary_<version>_amd64.deb.
#
#   scripts/package.sh           release build, then the checks below
#   scripts/package.sh --check   (the test suite) the dev build already made by the tests, fast
#                                compression, into a scratch dir; then the checks
#
# Checks: the package's files (dpkg-deb --contents), its control data, the extracted binary
# runs, `systemd-analyze verify` accepts the packaged unit, and `systemd-analyze security`
# rates its exposure at most 2.0 ("OK").
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --quiet
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d /tmp/estuary-deb.XXXXXX)
  trap 'rm -rf "$out"' EXIT
  cargo deb -p estuary --profile dev --no-strip --fast -o "$out/" >/dev/null
else
  out=target/debian
  cargo deb -p estuary -o "$out/" >/dev/null
fi
deb=$(ls "$out"/estuary_*.deb)
echo "package: $deb ($(du -h "$deb" | cut -f1))"
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/estuary ./usr/lib/systemd/system/estuary.service ./usr/share/doc/estuary/README.md \
         ./usr/share/doc/estuary/configuration.md ./usr/share/doc/estuary/copyright; do
  grep -q " $f\$" <<<"$contents" || { echo "missing from the package: $f"; exit 1; }
done
grep -q -- '-rwxr-xr-x .* ./usr/bin/estuary$' <<<"$contents" || { echo "usr/bin/estuary is not 0755"; exit 1; }
info=$(dpkg-deb --info "$deb")
for want in 'Package: estuary' 'Depends: .*adduser' 'Depends: .*libssl3'; do
  grep -q "$want" <<<"$info" || { echo "control: no $want"; exit 1; }
done
dpkg-deb --info "$deb" postinst | grep -q 'adduser --system' || { echo "postinst creates no user"; exit 1; }
root="$out/root"
dpkg-deb -x "$deb" "$root"
"$root/usr/bin/estuary" --version
unit="$out/estuary.service"
# The packaged unit, with ExecStart pointing at the extracted binary (verify checks it exists).
sed "s|/usr/bin/estuary|$root/usr/bin/estuary|" "$root/usr/lib/systemd/system/estuary.service" > "$unit"
systemd-analyze verify "$unit"
exposure=$(systemd-analyze security --offline=yes "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for estuary.service: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security: exposure $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }' || { echo "exposure ${exposure:-unknown} > 2.0"; exit 1; }
echo "package OK"
