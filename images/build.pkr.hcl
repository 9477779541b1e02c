# Two builds: cloud VMs get the content uploaded and applied over SSH; the local bake assembles a
# root filesystem here with debootstrap and packs it as a tarball. Both run the same
# scripts/apply-image.sh (ROOT=/ on a VM, ROOT=<rootfs> locally, through chroot).

build {
  name    = "cloud"
  sources = ["source.amazon-ebs.pigsty", "source.qemu.pigsty"]

  # cloud-init's own first boot must be over before apt runs (dpkg lock races).
  provisioner "shell" {
    inline = ["cloud-init status --wait || true"]
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
  # Last: forget this boot, so the image's first boot is a first boot.
  provisioner "shell" {
    inline = ["sudo rm -rf /tmp/pigen-content", "sudo cloud-init clean --logs --machine-id --seed", "sudo truncate -s 0 /etc/machine-id", "sudo userdel -r pigen 2>/dev/null || true"]
  }
}

build {
  name    = "local"
  sources = ["source.null.local"]

  provisioner "shell-local" {
    environment_vars = ["ROOT=${local.rootfs}", "SUITE=${var.distro_suite}", "MIRROR=${var.debian_mirror}", "CACHE=${var.debootstrap_cache}", "INCLUDE=${join(",", var.rootfs_packages)}"]
    script           = "${path.root}/scripts/debootstrap.sh"
  }
  provisioner "shell-local" {
    environment_vars = ["ROOT=${local.rootfs}", "CONTENT=${local.content_dir}", "BUNDLE=${var.bundle}"]
    script           = "${path.root}/scripts/apply-image.sh"
  }
  provisioner "shell-local" {
    environment_vars = ["ROOT=${local.rootfs}", "OUT=${local.tarball}", "IMAGE=${var.image_name}", "HASH=${var.content_hash}"]
    script           = "${path.root}/scripts/pack-rootfs.sh"
  }
}
