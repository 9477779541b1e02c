# Packer variables of every pigen image. The build-specific values come from the var file
# `pigen build` writes per image (out/images/<image>.pkrvars.hcl); the bake-time values (paths on
# the baking machine, the source image) are passed by `pigen bake` with -var. Nothing
# build-specific is hard-coded in these templates.

# ── from out/images/<image>.pkrvars.hcl ─────────────────────────────────────
variable "image_name" {
  type        = string
  description = "pigsty-<role>-<os>-<hash12>: the image's name and identity"
}
variable "image_role" {
  type = string
}
variable "os_profile" {
  type = string
}
variable "os_family" {
  type    = string
  default = "deb"
}
variable "distro_suite" {
  type        = string
  description = "Debian suite for the local bake's debootstrap (bookworm for d12)"
}
variable "content_hash" {
  type = string
}
variable "bake_key" {
  type        = string
  default     = ""
  description = "The bake key (content hash, bundle, base image, templates and scripts: pigen's generator/bake/key.ts), tagged and written into the image"
}
variable "pigen_version" {
  type = string
}
variable "packages" {
  type    = list(string)
  default = []
}

# ── bake time (pigen bake -var ...) ─────────────────────────────────────────
variable "content_dir" {
  type        = string
  default     = ""
  description = "The image content staged by pigen bake: files/, files.tsv, links.tsv, users.tsv, groups.txt, packages.txt"
}
variable "bundle" {
  type        = string
  default     = ""
  description = "A pigen bundle (.tgz) the packages are installed from; empty: the distro's configured repos"
}
variable "output_dir" {
  type    = string
  default = "baked"
}
variable "work_dir" {
  type        = string
  default     = "baked/.work"
  description = "Scratch directory of the local bake (the root filesystem is assembled in work_dir/rootfs)"
}
variable "debian_mirror" {
  type    = string
  default = "http://deb.debian.org/debian"
}
variable "debootstrap_cache" {
  type        = string
  default     = ""
  description = "Directory caching debootstrap results by suite+variant+packages; empty: no cache"
}
variable "rootfs_packages" {
  type = list(string)
  # (systemd-sysv: an init, and the systemctl a node's services are enabled with at first boot;
  # minbase has neither, and cloud-init does not pull them in.)
  default     = ["cloud-init", "systemd-sysv"]
  description = "Installed by debootstrap into the local bake's root filesystem"
}

# ── amazon-ebs ───────────────────────────────────────────────────────────────
variable "aws_region" {
  type    = string
  default = "us-east-1"
}
variable "aws_instance_type" {
  type    = string
  default = "t3.small"
}
variable "source_ami" {
  type        = string
  default     = "ami-00000000000000000"
  description = "Resolved by pigen bake (owner + name pattern, newest CreationDate)"
}
variable "ssh_username" {
  type    = string
  default = "admin"
}
variable "ami_name" {
  type        = string
  default     = ""
  description = "The AMI's name (pigen bake: <image>-<key8>); empty: the image name"
}
variable "aws_endpoint" {
  type        = string
  default     = ""
  description = "EC2 endpoint (pigen bake --aws-endpoint); empty: AWS's own for the region"
}

# ── qemu ─────────────────────────────────────────────────────────────────────
variable "qemu_source_image" {
  type        = string
  default     = "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
  description = "A cloud image (qcow2) with cloud-init"
}
variable "qemu_source_checksum" {
  type        = string
  default     = "none"
  description = "The source image's checksum, or file:URL of a checksum list: pigen bake passes the OS's list (QEMU_SOURCES); none here, so that packer validate works offline"
}
variable "qemu_ssh_key_file" {
  type        = string
  default     = ""
  description = "Private key of the throwaway bake user (made by pigen bake, removed after it)"
}
variable "qemu_accelerator" {
  type    = string
  default = "kvm"
}
variable "qemu_disk_size" {
  type    = string
  default = "8G"
}
