#!/usr/bin/env bash
# Times the README's two commands as a new user meets them: on a fresh Debian 12 root made with
# debootstrap, from a clone of this repository's HEAD, as root in a chroot. Needs root and
# debootstrap (apt-get install debootstrap). Prints one line per command with its exit status
# and seconds; the root stays in DIR for inspection (delete it with rm -rf, after the unmounts).
#   scripts/measure-fresh-root.sh [DIR]     # default /var/tmp/dalle-fresh-root
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir=${1:-/var/tmp/dalle-fresh-root}
[[ $(id -u) -eq 0 ]] || { echo "measure-fresh-root: needs root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "measure-fresh-root: apt-get install debootstrap first" >&2; exit 2; }
rm -rf "$dir"
start=$(date +%s)
debootstrap --variant=minbase bookworm "$dir" http://deb.debian.org/debian >"$dir.debootstrap.log" 2>&1
echo "debootstrap: $(($(date +%s) - start)) s (not part of the README's commands)"
cp /etc/resolv.conf "$dir/etc/resolv.conf"
git clone -q "$root" "$dir/root/dalle.cpp"
mount -t proc proc "$dir/proc"
mount --bind /dev "$dir/dev"
mount --bind /dev/pts "$dir/dev/pts"
trap 'umount "$dir/dev/pts" "$dir/dev" "$dir/proc"' EXIT
cat >"$dir/root/readme-commands.sh" <<'EOS'
#!/bin/bash
cd /root/dalle.cpp
export HOME=/root
s=$(date +%s); ./dalle generate -p "a red circle" -o out.png -s 1 >/root/first.log 2>&1; rc=$?
echo "first command (./dalle generate): exit $rc, $(($(date +%s) - s)) s"
s=$(date +%s); scripts/test.sh >/root/test.log 2>&1; rc=$?
echo "test command (scripts/test.sh): exit $rc, $(($(date +%s) - s)) s"
tail -3 /root/test.log
EOS
chmod +x "$dir/root/readme-commands.sh"
chroot "$dir" /root/readme-commands.sh
