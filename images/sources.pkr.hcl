# Where an image is baked: a cloud VM (amazon-ebs), a local VM (qemu), or a local root
# filesystem built with debootstrap (null source, no communicator: everything runs here).

locals {
  tags = {
    Name                 = var.image_name
    "pigen:image"        = var.image_name
    "pigen:role"         = var.image_role
    "pigen:os"           = var.os_profile
    "pigen:content-hash" = var.content_hash
    "pigen:bake-key"     = var.bake_key
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
  # (<image>-<first 8 of the bake key>: a bake of new inputs for the same content gets a name of its own.)
  ami_name      = var.ami_name != "" ? var.ami_name : var.image_name
  # (The endpoint pigen looked the AMIs up at, when one was given: Packer bakes there too.)
  custom_endpoint_ec2 = var.aws_endpoint
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
  # A throwaway bake user with a key pair pigen makes for this bake only (no password: the seed
  # locks it). It is removed on the way out, by the shutdown command: its own last session is
  # still open then, hence userdel -f; cloud-init's sudoers entry for it goes too.
  ssh_username         = "pigen"
  ssh_private_key_file = var.qemu_ssh_key_file != "" ? var.qemu_ssh_key_file : null
  # (Only for `packer validate` without pigen's variables: nothing can log in with it.)
  ssh_password     = var.qemu_ssh_key_file != "" ? null : "validate-only"
  ssh_timeout      = "10m"
  shutdown_command = "sudo sh -c 'rm -f /etc/sudoers.d/90-cloud-init-users; userdel -f -r pigen; shutdown -P now'"
  # NoCloud seed over HTTP (seed/ of the staged content: the bake user and its public key).
  http_directory = "${local.content_dir}/seed"
  qemuargs = [["-smbios", "type=1,serial=ds=nocloud-net;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/"]]
}

source "null" "local" {
  communicator = "none"
}
