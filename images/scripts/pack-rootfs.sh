#!/bin/sh
# Local bake, last step: forget the bake (cloud-init clean: logs, machine-id, seed; an empty
# /etc/machine-id makes the first boot generate one), then pack $ROOT as $OUT (gzip tar, numeric
# owners, sorted names), written beside it and renamed into place. Env: ROOT OUT IMAGE HASH [KEY].
set -eu
# (Modes are set where they matter; what mkdir and cp make otherwise is what cloud-init's
# write_files makes, whatever the umask of the user running the bake.)
umask 022
: "${ROOT:?}" "${OUT:?}" "${IMAGE:?}" "${HASH:?}"
log() { echo "pack-rootfs: $*"; }
if [ -x "$ROOT/usr/bin/cloud-init" ]; then
  chroot "$ROOT" cloud-init clean --logs --machine-id --seed
else
  log "warning: no cloud-init in the root filesystem"
  rm -rf "$ROOT/var/lib/cloud" "$ROOT"/var/log/cloud-init*.log
fi
rm -f "$ROOT/var/lib/dbus/machine-id"
: > "$ROOT/etc/machine-id"
rm -rf "$ROOT"/tmp/* "$ROOT"/var/tmp/*
# The build host's DNS servers and name (debootstrap copies them in): a node gets its own at boot
# (DHCP, cloud-init), and the user-data's nameservers go after what the file holds.
# (Removed first: a link there would point into the build host.)
rm -f "$ROOT/etc/resolv.conf" && : > "$ROOT/etc/resolv.conf"
rm -f "$ROOT/etc/hostname"
# What the image is, for whoever finds the tarball.
mkdir -p "$ROOT/etc/pigen"
printf 'image=%s\ncontent_hash=%s\nbake_key=%s\n' "$IMAGE" "$HASH" "${KEY:-}" > "$ROOT/etc/pigen/image"
mkdir -p "$(dirname "$OUT")"
TMP="$(dirname "$OUT")/.$(basename "$OUT").tmp-$$"
trap 'rm -f "$TMP"' EXIT INT TERM
if command -v pigz >/dev/null 2>&1; then Z="pigz"; else Z="gzip"; fi
# (tar runs the compressor itself, so a failure of either fails the step: with a pipe, a tar
# cut short left a shorter tarball renamed into place, and reported as baked.)
tar -C "$ROOT" --numeric-owner --sort=name --xattrs --use-compress-program="$Z -6" -cf "$TMP" .
mv "$TMP" "$OUT"
trap - EXIT INT TERM
log "$OUT: $(du -h "$OUT" | cut -f1)"
