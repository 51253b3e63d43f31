/** Filesystem magic numbers (statfs f_type); no FFI here, so the CLI can use them cheaply. */
export const BPF_FS_MAGIC = 0xcafe4a11;
