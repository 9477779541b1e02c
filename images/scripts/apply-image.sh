#!/bin/sh
# Applies a pigen image's content to a root filesystem: ROOT=/ on a VM being baked, or the
# directory of a local bake (commands then run through chroot). Staged by `pigen bake` in
# $CONTENT: files/ (each file at its physical path), files.tsv (mode owner path), links.tsv
# (path target), groups.txt, users.tsv (name groups home), packages.txt, repo-remove (flag),
# repo-install (flag: run the bundle installer, the image carries the offline repo).
# $BUNDLE: a pigen bundle (.tgz) the packages come from (a file: repo inside the root filesystem);
# empty: the repos the root filesystem already has.
# Order: users, links, packages (daemons kept from starting), the distro repos' removal, files
# (over the packages' defaults), the offline repo, cleanup. Idempotent.
set -eu
# (Modes are set where they matter; what mkdir and cp make otherwise is what cloud-init's
# write_files makes, whatever the umask of the user running the bake.)
umask 022
: "${ROOT:?}" "${CONTENT:?}"
BUNDLE=${BUNDLE:-}
log() { echo "apply-image: $*"; }
R=${ROOT%/}
in_root() { if [ -z "$R" ]; then "$@"; else chroot "$ROOT" "$@"; fi; }
FAMILY=deb
[ -x "$R/usr/bin/dpkg" ] || FAMILY=rpm

MOUNTED=""
cleanup() {
  rm -f "$R/usr/sbin/policy-rc.d"
  rm -rf "$R/var/tmp/pigen-repo" "$R/var/tmp/pigen-repo.list" "$R/var/tmp/pigen-bundle.tgz"
  if [ -n "$MOUNTED" ]; then umount "$R/proc" || umount -l "$R/proc" || true; fi
}
trap cleanup EXIT INT TERM
if [ -n "$R" ] && ! mountpoint -q "$R/proc"; then
  mkdir -p "$R/proc" && mount -t proc proc "$R/proc" && MOUNTED=1
fi

# No daemon starts while packages install (the configs come after them).
if [ "$FAMILY" = deb ]; then
  printf '#!/bin/sh\n# pigen bake: no service starts during image package installs\nexit 101\n' > "$R/usr/sbin/policy-rc.d"
  chmod 0755 "$R/usr/sbin/policy-rc.d"
fi

# System groups and users the image's services run as.
if [ -s "$CONTENT/groups.txt" ]; then
  while read -r g; do [ -n "$g" ] && { in_root getent group "$g" >/dev/null || in_root groupadd --system "$g"; } </dev/null; done < "$CONTENT/groups.txt"
fi
if [ -s "$CONTENT/users.tsv" ]; then
  while IFS="$(printf '\t')" read -r u groups home; do
    [ -n "$u" ] || continue
    { in_root id "$u" >/dev/null 2>&1 || in_root useradd --system --no-create-home --home-dir "$home" --shell /usr/sbin/nologin ${groups:+-G "$groups"} "$u"; } </dev/null
    log "user $u"
  done < "$CONTENT/users.tsv"
fi

# The links (/infra -> /data/infra, /www -> /data/nginx) before the packages, as the full
# user-data's bootcmd makes them: a package that ships a directory at a link's path (nginx's
# /var/www) would otherwise hold the link inside it. A directory there is replaced only when empty.
TAB="$(printf '\t')"
if [ -s "$CONTENT/links.tsv" ]; then
  while IFS="$TAB" read -r path target; do
    [ -n "$path" ] || continue
    mkdir -p "$R$target" "$(dirname "$R$path")"
    if [ -d "$R$path" ] && [ ! -L "$R$path" ]; then
      rmdir "$R$path" 2>/dev/null || { log "error: $path is a directory with files in it: cannot make it a link to $target"; exit 1; }
    fi
    [ -L "$R$path" ] || ln -s "$target" "$R$path"
  done < "$CONTENT/links.tsv"
fi

PKGS=$(cat "$CONTENT/packages.txt" 2>/dev/null | tr '\n' ' ')
if [ -n "$BUNDLE" ]; then
  mkdir -p "$R/var/tmp/pigen-repo"
  tar -xzf "$BUNDLE" -C "$R/var/tmp/pigen-repo"
  cp "$BUNDLE" "$R/var/tmp/pigen-bundle.tgz"
fi
if [ -n "$PKGS" ]; then
  log "installing: $PKGS"
  if [ "$FAMILY" = deb ]; then
    export DEBIAN_FRONTEND=noninteractive
    if [ -n "$BUNDLE" ]; then
      echo 'deb [trusted=yes] file:/var/tmp/pigen-repo/pigsty ./' > "$R/var/tmp/pigen-repo.list"
      APT="-o Dir::Etc::sourcelist=/var/tmp/pigen-repo.list -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0"
    else
      APT=""
    fi
    # shellcheck disable=SC2086
    in_root apt-get $APT -q update
    # (Recommends too, as cloud-init's packages module installs them at first boot; and, as it
    # does, a config file the machine already has is kept, never asked about: a VM's first boot
    # may have made one (cloud-init writes /etc/sudoers where sudo is not installed yet), and
    # dpkg's question, with no one to answer it, failed the install. The image's files come next.)
    # (Words, never globs: a package named htp* would match files here.)
    set -f
    # shellcheck disable=SC2086
    in_root apt-get $APT -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install -- $PKGS
    set +f
    # (A first boot before sudo leaves cloud-init's stub /etc/sudoers, only an include line, which
    # --force-confold keeps: sudo's own file goes in its place, root and the sudo group in it.)
    if [ -e "$R/etc/sudoers.dpkg-dist" ] && ! grep -q '^Defaults' "$R/etc/sudoers" 2>/dev/null; then
      chmod 0440 "$R/etc/sudoers.dpkg-dist" && mv "$R/etc/sudoers.dpkg-dist" "$R/etc/sudoers"
      log "/etc/sudoers: sudo's own (the machine had cloud-init's stub)"
    fi
    in_root apt-get clean
    rm -f "$R"/var/lib/apt/lists/_var_tmp_pigen-repo*
  else
    if [ -n "$BUNDLE" ]; then
      printf '[pigen-bake]\nname=pigen bake\nbaseurl=file:///var/tmp/pigen-repo/pigsty\ngpgcheck=0\n' > "$R/etc/yum.repos.d/pigen-bake.repo"
      set -f
      # shellcheck disable=SC2086
      in_root dnf -y --disablerepo='*' --enablerepo=pigen-bake install -- $PKGS
      set +f
      rm -f "$R/etc/yum.repos.d/pigen-bake.repo"
    else
      set -f
      # shellcheck disable=SC2086
      in_root dnf -y install -- $PKGS
      set +f
    fi
    in_root dnf clean all
  fi
fi

# Distro repo files removed (node_repo_remove), as the full user-data does at first boot: after
# the packages (without a bundle they come from those repos), before the image's own repo files.
if [ -e "$CONTENT/repo-remove" ]; then
  if [ "$FAMILY" = deb ]; then
    mkdir -p "$R/etc/apt/backup"
    for f in "$R"/etc/apt/sources.list.d/* "$R/etc/apt/sources.list"; do [ -e "$f" ] && mv "$f" "$R/etc/apt/backup/"; done
  else
    mkdir -p "$R/etc/yum.repos.d/backup"
    for f in "$R"/etc/yum.repos.d/*.repo; do [ -e "$f" ] && mv "$f" "$R/etc/yum.repos.d/backup/"; done
  fi
  true
fi

# Every file at its physical path (the links were made before the packages), then owners (by
# name, inside the root filesystem, where the users now exist).
N=0
if [ -s "$CONTENT/files.tsv" ]; then
  while IFS="$TAB" read -r mode owner path; do
    [ -n "$path" ] || continue
    mkdir -p "$(dirname "$R$path")"
    cp "$CONTENT/files$path" "$R$path.pigen-tmp"
    chmod "$mode" "$R$path.pigen-tmp"
    mv "$R$path.pigen-tmp" "$R$path"
    in_root chown "$owner" "$path" </dev/null
    N=$((N + 1))
  done < "$CONTENT/files.tsv"
fi
log "$N files written"

# The repo-serving node's image carries the offline repo (its installer verifies the bundle).
if [ -e "$CONTENT/repo-install" ] && [ -n "$BUNDLE" ]; then
  in_root /usr/local/bin/pigen-install-bundle /var/tmp/pigen-bundle.tgz
fi
log "done"
