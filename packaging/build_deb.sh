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

# The package owning each library (usrmerge: a library may be registered under /lib or /usr/lib).
owner() {
  local lib=$1 real
  real=$(readlink -f "$lib")
  for p in "$lib" "$real" "${lib#/usr}" "/usr$lib" "${real#/usr}" "/usr$real"; do
    dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1 && return 0
  done
  echo "build_deb: no package owns $lib" >&2
  return 1
}
libs=$(for f in "$root"/usr/bin/* "$root"/usr/libexec/muster/* "$root"/usr/lib/muster/plugins/*.so; do
         ldd "$f"
       done | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
depends=""
for pkg in $(for l in $libs; do owner "$l"; done | sort -u); do
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
