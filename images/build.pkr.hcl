# Two builds: cloud VMs get the content uploaded and applied over SSH; the local bake assembles a
# root filesystem here with debootstrap and packs it as a tarball. Both run the same
# scripts/apply-image.sh (ROOT=/ on a VM, ROOT=<rootfs> locally, through chroot).

build {
  name    = "cloud"
  sources = ["source.amazon-ebs.pigsty", "source.qemu.pigsty"]

  # cloud-init's own first boot must be over before apt runs (dpkg lock races). The upload's
  # destination is made first: Packer's file provisioner copies a directory's contents
  # (`source` ending in /) into one that must exist (scp otherwise writes an empty file there).
  provisioner "shell" {
    inline = ["cloud-init status --wait || true", "rm -rf /tmp/pigen-content && mkdir -m 0700 /tmp/pigen-content"]
  }
  provisioner "file" {
    source      = "${local.content_dir}/"
    destination = "/tmp/pigen-content"
  }
  provisioner "shell" {
    environment_vars = ["ROOT=/", "CONTENT=/tmp/pigen-content", "BUNDLE=${var.bundle == "" ? "" : "/tmp/pigen-content/bundle.tgz"}"]
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} sh {{ .Path }}"
    script           = "${path.root}/scripts/apply-image.sh"
  }
  # Last: forget this boot, so the image's first boot is a first boot (qemu: the bake user is
  # removed by the shutdown command, sources.pkr.hcl); and say what the image is, for whoever finds
  # a machine made from it, as a local bake's tarball says it (scripts/pack-rootfs.sh).
  provisioner "shell" {
    inline = [
      "sudo rm -rf /tmp/pigen-content",
      "sudo cloud-init clean --logs --machine-id --seed",
      "sudo truncate -s 0 /etc/machine-id",
      "sudo install -d -m 0755 /etc/pigen",
      "printf 'image=%s\\ncontent_hash=%s\\nbake_key=%s\\n' '${var.image_name}' '${var.content_hash}' '${var.bake_key}' | sudo tee /etc/pigen/image >/dev/null",
      "sudo chmod 0644 /etc/pigen/image",
    ]
  }
  # amazon-ebs: Packer's temporary key leaves the login user's authorized_keys (cloud-init puts
  # the launch key pair's there at the image's first boot).
  provisioner "shell" {
    only   = ["amazon-ebs.pigsty"]
    inline = ["rm -f ~/.ssh/authorized_keys"]
  }
}

build {
  name    = "local"
  sources = ["source.null.local"]

  provisioner "shell-local" {
    environment_vars = ["ROOT=${local.rootfs}", "SUITE=${var.distro_suite}", "MIRROR=${var.debian_mirror}", "CACHE=${var.debootstrap_cache}", "INCLUDE=${join(",", var.rootfs_packages)}"]
    script           = "${path.root}/scripts/debootstrap.sh"
    execute_command  = ["/bin/sh", "-c", "{{.Vars}} \"{{.Script}}\""]
  }
  provisioner "shell-local" {
    environment_vars = ["ROOT=${local.rootfs}", "CONTENT=${local.content_dir}", "BUNDLE=${var.bundle}"]
    script           = "${path.root}/scripts/apply-image.sh"
    # (The script path quoted: pigen installed under a path with a space.)
    execute_command  = ["/bin/sh", "-c", "{{.Vars}} \"{{.Script}}\""]
  }
  provisioner "shell-local" {
    environment_vars = ["ROOT=${local.rootfs}", "OUT=${local.tarball}", "IMAGE=${var.image_name}", "HASH=${var.content_hash}", "KEY=${var.bake_key}"]
    script           = "${path.root}/scripts/pack-rootfs.sh"
    execute_command  = ["/bin/sh", "-c", "{{.Vars}} \"{{.Script}}\""]
  }
}
