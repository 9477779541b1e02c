#!/bin/sh
# Local bake, step 1: a Debian root filesystem in $ROOT from debootstrap (variant minbase) with
# $INCLUDE (comma-separated, e.g. cloud-init). With $CACHE set, the result is kept as a tarball
# keyed by suite + variant + included packages + mirror and reused by later bakes (a cold cache
# just runs debootstrap). Needs root. Env: ROOT SUITE MIRROR [CACHE] [INCLUDE].
set -eu
# (Modes are set where they matter; what mkdir and cp make otherwise is what cloud-init's
# write_files makes, whatever the umask of the user running the bake.)
umask 022
: "${ROOT:?}" "${SUITE:?}" "${MIRROR:?}"
INCLUDE=${INCLUDE:-}
log() { echo "debootstrap: $*"; }

if [ -e "$ROOT" ]; then
  log "removing the previous $ROOT"
  rm -rf --one-file-system "$ROOT"
fi
mkdir -p "$ROOT"

KEY=$(printf '%s|minbase|%s|%s' "$SUITE" "$INCLUDE" "$MIRROR" | sha256sum | cut -c1-16)
CACHED="${CACHE:+$CACHE/$SUITE-minbase-$KEY.tar}"
if [ -n "$CACHED" ] && [ -s "$CACHED" ]; then
  log "cache hit: $CACHED"
  tar -C "$ROOT" --numeric-owner -xpf "$CACHED"
  exit 0
fi

log "debootstrap --variant=minbase $SUITE $ROOT $MIRROR"
START=$(date +%s)
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR"
# Extra packages through apt inside the new root (debootstrap's own resolver does not follow
# virtual packages, e.g. cloud-init's python3-cffi-backend-api-max), with no daemon started.
if [ -n "$INCLUDE" ]; then
  log "apt-get install $INCLUDE"
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
  chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
  mount -t proc proc "$ROOT/proc"
  trap 'umount "$ROOT/proc" 2>/dev/null || umount -l "$ROOT/proc" 2>/dev/null || true' EXIT INT TERM
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get -q update
  # shellcheck disable=SC2046
  chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get -q -y --no-install-recommends install $(echo "$INCLUDE" | tr ',' ' ')
  umount "$ROOT/proc" || umount -l "$ROOT/proc"
  trap - EXIT INT TERM
  rm -f "$ROOT/usr/sbin/policy-rc.d"
fi
# Downloaded .debs and package lists are not part of the image.
rm -f "$ROOT"/var/cache/apt/archives/*.deb
rm -rf "$ROOT"/var/lib/apt/lists/*
log "done in $(( $(date +%s) - START )) s"

if [ -n "$CACHED" ]; then
  mkdir -p "$CACHE"
  tar -C "$ROOT" --numeric-owner -cpf "$CACHED.tmp.$$" .
  mv "$CACHED.tmp.$$" "$CACHED"
  log "cached as $CACHED"
fi
