// The cloud images `pigen bake --target qemu` starts from, per os_profile, with the checksum list
// Packer checks each download against (file:URL: Packer finds the image's name in it).

export const QEMU_SOURCES: Record<string, { url: string; checksum: string }> = {
  d12: {
    url: 'https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2',
    checksum: 'file:https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS',
  },
  el9: {
    url: 'https://dl.rockylinux.org/pub/rocky/9/images/x86_64/Rocky-9-GenericCloud-Base.latest.x86_64.qcow2',
    checksum: 'file:https://dl.rockylinux.org/pub/rocky/9/images/x86_64/Rocky-9-GenericCloud-Base.latest.x86_64.qcow2.CHECKSUM',
  },
};
