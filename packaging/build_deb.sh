#!/usr/bin/env bash
# Builds the .deb from the dist tarball through scripts/install (one layout for both), with
# Depends derived from the libraries the binaries actually link (ldd, then dpkg -S).
#   build_deb.sh DIST_TAR INSTALL_SCRIPT DEBIAN_DIR OUT.deb
set -euo pipefail
dist=$1 install_script=$2 debian=$3 out=$4
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
if ! log=$("$install_script" --from "$dist" --prefix /usr --root "$stage/root" \
    --sysconfdir /etc --unitdir /lib/systemd/system --no-reload 2>&1); then
  echo "$log" >&2
  exit 1
fi
root=$stage/root
rmdir "$root/var/lib/muster" "$root/var/lib" "$root/var" # made by postinst, removed by purge
version=$(tar -xOf "$dist" ./VERSION)

# The package owning each library, from one dpkg-query over every spelling of its path
# (usrmerge: a library may be registered under /lib or /usr/lib, by its link name or target).
libs=$(for f in "$root"/usr/bin/* "$root"/usr/libexec/muster/* "$root"/usr/lib/muster/plugins/*.so "$root"/usr/lib/muster/plugins/muster-container*; do
         ldd "$f"
       done | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
variants() {
  local lib=$1 real
  real=$(readlink -f "$lib")
  printf '%s\n' "$lib" "$real" "${lib#/usr}" "/usr$lib" "${real#/usr}" "/usr$real"
}
owners=$(for l in $libs; do variants "$l"; done | sort -u | xargs dpkg-query -S 2>/dev/null || true)
pkgs=""
for l in $libs; do
  pkg=""
  for v in $(variants "$l"); do
    pkg=$(awk -v p="$v" '!/^diversion/ && $NF == p { sub(/[:,].*/, "", $1); print $1; exit }' \
      <<<"$owners")
    [ -n "$pkg" ] && break
  done
  if [ -z "$pkg" ]; then
    echo "build_deb: no package owns $l" >&2
    exit 1
  fi
  pkgs="$pkgs $pkg"
done
depends=""
for pkg in $(tr ' ' '\n' <<<"$pkgs" | sed '/^$/d' | sort -u); do
  v=$(dpkg-query -W -f='${Version}' "$pkg")
  depends="${depends:+$depends, }$pkg (>= $v)"
done
mkdir -m 0755 "$root/DEBIAN"
size=$(du -sk "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$(dpkg --print-architecture)|" \
  -e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$depends|" "$debian/control.in" > "$root/DEBIAN/control"
printf '/etc/muster/agent.yaml\n/etc/muster/musterd.yaml\n' > "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "$debian/$s" "$root/DEBIAN/$s"; done
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
