# Newer Packer only (>= 1.7): plugin pins for `packer init`. Kept out of images/ itself because
# Debian's Packer 1.6.6 rejects `required_plugins`; with a newer Packer, copy this file into
# images/ (or pass both directories' files) before `packer init images/`.
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.0"
    }
    qemu = {
      source  = "github.com/hashicorp/qemu"
      version = ">= 1.0.9"
    }
  }
}
