# Where an image is baked: a cloud VM (amazon-ebs), a local VM (qemu), or a local root
# filesystem built with debootstrap (null source, no communicator: everything runs here).

locals {
  tags = {
    Name                 = var.image_name
    "pigen:image"        = var.image_name
    "pigen:role"         = var.image_role
    "pigen:os"           = var.os_profile
    "pigen:content-hash" = var.content_hash
    "pigen:version"      = var.pigen_version
  }
  rootfs  = "${var.work_dir}/rootfs"
  # pigen bake always passes content_dir; without it (packer validate) an empty placeholder.
  content_dir = var.content_dir != "" ? var.content_dir : "${path.root}/scripts/no-content"
  tarball = "${var.output_dir}/${var.image_name}.rootfs.tar.gz"
}

source "amazon-ebs" "pigsty" {
  region        = var.aws_region
  instance_type = var.aws_instance_type
  source_ami    = var.source_ami
  ssh_username  = var.ssh_username
  ami_name      = var.image_name
  tags          = local.tags
  run_tags      = local.tags
}

source "qemu" "pigsty" {
  iso_url          = var.qemu_source_image
  iso_checksum     = var.qemu_source_checksum
  disk_image       = true
  disk_size        = var.qemu_disk_size
  format           = "qcow2"
  accelerator      = var.qemu_accelerator
  headless         = true
  output_directory = "${var.output_dir}/${var.image_name}.qemu"
  vm_name          = "${var.image_name}.qcow2"
  ssh_username     = "pigen"
  ssh_password     = "pigen-bake"
  ssh_timeout      = "10m"
  shutdown_command = "sudo shutdown -P now"
  # NoCloud seed over HTTP (seed/ of the staged content: a throwaway bake user, removed again by
  # cloud-init clean and userdel in the last provisioner).
  http_directory = "${local.content_dir}/seed"
  qemuargs = [["-smbios", "type=1,serial=ds=nocloud-net;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/"]]
}

source "null" "local" {
  communicator = "none"
}
